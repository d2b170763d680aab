"""The bundled object classifier on real photographs (scikit-image's), and its word tables."""
import os

import numpy as np
import pytest

from altvoice.images import decode_image
from altvoice.model.classifier import IMAGE_SIZE, Evidence, ObjectClassifier, read_living_words, read_object_words
from altvoice.model.export import BUNDLED_MODEL, CLASSIFIER_FILE, LIVING_WORDS_FILE, OBJECT_WORDS_FILE

skimage = pytest.importorskip("skimage")
PHOTOS = os.path.join(os.path.dirname(skimage.__file__), "data")


@pytest.fixture(scope="module")
def classifier():
    return ObjectClassifier(os.path.join(BUNDLED_MODEL, CLASSIFIER_FILE), os.path.join(BUNDLED_MODEL, OBJECT_WORDS_FILE))


def photo(name: str) -> np.ndarray:
    with open(os.path.join(PHOTOS, name), "rb") as f:
        return decode_image(f.read(), IMAGE_SIZE)


@pytest.mark.parametrize("name, kind, word", [("chelsea.png", "cat", "cat"), ("coffee.png", "drink", "coffee"),
                                               ("rocket.jpg", "vehicle", "missile")])
def test_the_classifier_names_the_subject_of_real_photos(classifier, name, kind, word):
    (evidence,) = classifier.evidence(photo(name)[None])
    assert evidence.kind()[0] == kind and evidence.kind()[1] > 0.5
    assert evidence.best_word(kind, 0.3)[0] == word
    top = evidence.top_classes()
    assert top and top[0]["probability"] >= top[-1]["probability"] >= 0.05 and set(top[0]) == {"word", "class", "probability"}


def test_a_batch_is_the_images_one_by_one_and_probabilities_sum_to_one(classifier):
    images = np.stack([photo("chelsea.png"), photo("coffee.png")])
    batch = classifier.classify(images)
    assert batch.shape == (2, 1000) and np.allclose(batch.sum(axis=1), 1.0, atol=1e-3)
    assert np.allclose(batch[1], classifier.classify(images[1:]))
    with pytest.raises(ValueError, match="224x224x3"):
        classifier.classify(np.zeros((1, 160, 160, 3), np.uint8))


def test_evidence_sums_classes_by_word_and_kind(classifier):
    probabilities = np.zeros(1000)
    labels = [c.label for c in classifier.classes]
    probabilities[labels.index("tabby")], probabilities[labels.index("Egyptian cat")] = 0.3, 0.3
    probabilities[labels.index("macaw")] = 0.4
    evidence = Evidence(probabilities, classifier.classes)
    assert evidence.by_word["cat"] == pytest.approx(0.6) and evidence.kind() == ("cat", pytest.approx(0.6))
    assert evidence.best_word("cat", 0.5)[:2] == ("cat", pytest.approx(0.6))
    assert evidence.best_word("bird", 0.3)[0] == "parrot" and evidence.best_word("bird", 0.5) is None


def test_tables_are_checked_when_read(tmp_path):
    words = read_living_words(os.path.join(BUNDLED_MODEL, LIVING_WORDS_FILE))
    assert words["puppy"] == "dog" and words["women"] == "person" and "grass" not in words
    broken = tmp_path / "words.tsv"
    broken.write_text("index\twnid\tlabel\tword\tkind\twords\n2\tn1\ttench\tfish\tanimal\tfish|animal\n")
    with pytest.raises(ValueError, match="row 1"):
        read_object_words(str(broken))
