"""`altvoice ensemble`: exports of one backbone and vocabulary combine into one export that decodes with all."""
import shutil

import keras
import numpy as np
import pytest

from altvoice import cli
from altvoice.flags import UsageError
from altvoice.images import decode_image
from altvoice.model import ensemble, train
from altvoice.model.backbones import build_feature_extractor
from altvoice.model.export import load_captioner


@pytest.fixture(scope="module")
def second(prepared, tmp_path_factory, train_argv):
    """Another member: the same data, another seed."""
    output = tmp_path_factory.mktemp("second")
    train.run(train_argv(prepared, output, "--epochs", "2", "--learning-rate", "0.01", "--seed", "8"))
    return output / "export"


@pytest.fixture(scope="module")
def images(dataset):
    return [decode_image((dataset["root"] / "Images" / n).read_bytes(), 32) for n in dataset["good"]]


@pytest.fixture(scope="module")
def joined(trained, second, tmp_path_factory):
    """The two members, the folder of their (float32) ensemble and its model card."""
    members, output = [str(trained[0] / "export"), str(second)], tmp_path_factory.mktemp("pair")
    return members, output, ensemble.run(["--models", *members, "--output", str(output)])


def test_an_export_twice_captions_as_the_export_alone(trained, images, tmp_path):
    one = str(trained[0] / "export")
    card = ensemble.run(["--models", one, one, "--output", str(tmp_path / "twice")])
    assert card["decoders"] == ["decoder.weights.h5", "decoder-2.weights.h5"] and len(card["ensemble"]) == 2
    alone, twice = load_captioner(one), load_captioner(str(tmp_path / "twice"))
    for width in (1, 3):
        expected, found = alone.caption_images(images, beam_width=width), twice.caption_images(images, beam_width=width)
        assert [c for c, _ in found] == [c for c, _ in expected]
        np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], rtol=1e-5)


def test_float16_weights_halve_the_files_and_keep_the_captions(joined, images, tmp_path):
    members, full, card = joined
    half = ensemble.run(["--models", *members, "--output", str(tmp_path / "half"), "--float16"])
    assert (card["decoder_weights"], half["decoder_weights"]) == ("float32", "float16")
    for name in half["decoders"]:
        size, full_size = (tmp_path / "half" / name).stat().st_size, (full / name).stat().st_size
        assert size < 0.6 * full_size
    expected = load_captioner(str(full)).caption_images(images)
    found = load_captioner(str(tmp_path / "half")).caption_images(images)
    assert [c for c, _ in found] == [c for c, _ in expected]
    np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], atol=0.01)


def test_the_ensemble_averages_its_members_log_probabilities(joined, images):
    members, output, card = joined
    assert [m["model"] for m in card["ensemble"]] == members and card["metrics"] == {}
    pair, loaded = load_captioner(str(output), keras_backbone=True), [load_captioner(m) for m in members]
    features = pair.extractor.predict_on_batch(np.stack(images))
    tokens = np.full(len(images), 2, np.int32)  # <start>
    log_probs, _ = pair.decoder.step(tokens, pair.decoder.encode(features))
    each = [c.decoder.step(tokens, c.decoder.encode(features))[0] for c in loaded]
    finite = np.isfinite(each[0])
    mean = np.where(finite, (each[0] + each[1]) / 2, -np.inf)
    expected = mean - np.logaddexp.reduce(mean[finite].reshape(len(images), -1), axis=1, keepdims=True)
    np.testing.assert_allclose(log_probs[finite], expected[finite], atol=1e-4)
    assert np.isneginf(log_probs[~finite]).all()
    assert all(caption for caption, _ in pair.caption_images(images))


def test_members_that_do_not_match_are_refused(trained, second, tmp_path):
    one = str(trained[0] / "export")
    other_words = shutil.copytree(one, tmp_path / "words")
    vocabulary = (other_words / "vocabulary.txt").read_text().splitlines()
    (other_words / "vocabulary.txt").write_text("\n".join(vocabulary[:-1] + ["zebra"]) + "\n")
    with pytest.raises(UsageError, match="vocabularies differ"):
        ensemble.run(["--models", one, str(other_words), "--output", str(tmp_path / "x")])
    other_backbone = shutil.copytree(one, tmp_path / "backbone")
    keras.utils.set_random_seed(11)
    build_feature_extractor("mobilenet_v2", "none", 32).save_weights(other_backbone / "backbone.weights.h5")
    with pytest.raises(UsageError, match="backbone weights differ"):
        ensemble.run(["--models", one, str(other_backbone), "--output", str(tmp_path / "x")])
    with pytest.raises(UsageError, match="two or more"):
        ensemble.run(["--models", one, "--output", str(tmp_path / "x")])
    assert cli.main(["ensemble", "--models", one, str(other_words), "--output", str(tmp_path / "x")]) == 2
    assert "--models" in cli.command_help("ensemble") and not (tmp_path / "x").exists()
