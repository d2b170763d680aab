"""bench/breadth.py's scoring of alt texts against labels, and the word-detector trainer's pieces."""
import numpy as np
import pytest

from bench.breadth import names, score
from bench.release_card import publishable
from bench.train_word_detectors import auc, candidate_words, labels
from altvoice.model.detectors import PEOPLE

LABELS = [
    {"image": "cat.jpg", "main": ["cat", "kitten"], "absent_common": ["dog", "man"], "people": False},
    {"image": "food.jpg", "main": ["hot dog"], "absent_common": ["dog", "water"], "people": False},
    {"image": "crowd.jpg", "main": ["people", "man"], "absent_common": ["dog"], "people": True},
]


def test_names_match_words_plurals_and_phrases_not_parts_of_words():
    assert names("Two kittens on a sofa.", ["kitten"]) and names("A hot dog with mustard.", ["hot dog"])
    assert names("Three hot dogs.", ["hot dog"]) and not names("A hotel room.", ["hot"])
    assert not names("A dog on a hot day.", ["hot dog"]) and not names("A catalogue.", ["cat"])


def test_score_counts_subject_recall_hallucinations_and_people():
    records = {"cat.jpg": {"alt_text": "A man holds a cat.", "needs_review": True},
               "food.jpg": {"alt_text": "A photo of a hot dog.", "needs_review": False},
               "crowd.jpg": {"alt_text": "A dog runs.", "needs_review": False}}
    result = score(records, LABELS)
    assert result["main_subject_recall"] == pytest.approx(2 / 3, abs=1e-3)  # the crowd's text misses its people
    assert result["hallucination_rate"] == pytest.approx(2 / 3, abs=1e-3)  # "man" on the cat, "dog" in the crowd
    assert result["people_hallucination"] == 0.5 and result["people_free_photos"] == 2
    assert (result["flagged"], result["wrong_when_flagged"], result["wrong_when_unflagged"]) == (1, 1.0, 0.5)
    assert score({}, LABELS)["main_subject_recall"] == 0  # a photo with no record names nothing


def test_detector_labels_words_and_auc():
    refs = {"a": [{"a", "man", "on", "grass"}, {"men", "grass"}, {"a", "man"}, {"grass"}, {"man"}],
            "b": [{"a", "dog", "in", "water"}, {"waters"}, {"dog"}, {"dog"}, {"dog"}]}
    found = labels(refs, ["a", "b"], ["grass", "water"], {"man", "men"})
    assert found[PEOPLE].tolist() == [True, False] and found["grass"].tolist() == [True, False]
    assert found["water"].tolist() == [False, True]  # "water" and its plural, in 2 captions
    tags = {"grass": {"n": 9}, "water": {"n": 9, "v": 1}, "running": {"n": 1}, "red": {"a": 9, "n": 1}, "dog": {"n": 9}}
    words = candidate_words(refs, ["a", "b"], ["grass", "water", "waters", "running", "red", "dog"], {"dog": {"dog"}},
                            tags, min_images=1)
    assert words == ["grass", "water"]  # no plural, -ing verb, adjective or living being
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True])) == 0.75


def test_published_cards_name_no_paths_of_the_machine():
    card = {"weights": "/data/shared/models/w.h5", "runs": [{"model": "/tmp/rel/train/seed-1/export"}],
            "other": "/home/me/x.txt", "url": "gs://bucket/dir/file.json", "flags": "--seed 1"}
    clean = publishable(card, {"shared": "/data/shared", "release": "/tmp/rel"})
    assert clean == {"weights": "shared/models/w.h5", "runs": [{"model": "release/train/seed-1/export"}],
                     "other": "x.txt", "url": "file.json", "flags": "--seed 1"}
