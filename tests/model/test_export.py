"""The exported captioner: a save/load round trip, raw bytes in, and the Beam RunInference handler."""
import pickle
import shutil

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from altvoice.flags import UsageError
from altvoice.images import ImageError, decode_image
from altvoice.model.export import Captioner, export_captioner, load_captioner
from altvoice.model.handler import CaptionModelHandler


@pytest.fixture(scope="module")
def export_dir(trained):
    return trained[0] / "export"


@pytest.fixture(scope="module")
def loaded(export_dir):
    return load_captioner(str(export_dir), keras_backbone=True)


@pytest.fixture(scope="module")
def images(dataset, loaded):
    return {n: decode_image((dataset["root"] / "Images" / n).read_bytes(), loaded.image_size) for n in dataset["good"]}


def test_save_and_load_give_the_same_captions(loaded, images, tmp_path):
    card = {k: v for k, v in loaded.card.items() if k not in ("format", "decoder", "vocabulary")}
    export_captioner(str(tmp_path / "again"), loaded.decoder_models, loaded.extractor, loaded.vocabulary, card,
                     image_prior=loaded.image_prior)
    again = load_captioner(str(tmp_path / "again"))
    np.testing.assert_array_equal(again.image_prior, loaded.image_prior)
    arrays = list(images.values())
    for width in (1, 3):
        before, after = loaded.caption_images(arrays, beam_width=width), again.caption_images(arrays, beam_width=width)
        assert [c for c, _ in before] == [c for c, _ in after]
        np.testing.assert_allclose([s for _, s in before], [s for _, s in after], rtol=1e-6)
    digest = "tflite_sha256"  # two conversions of the same weights differ in their bytes
    assert {**again.card, "backbone": {**again.card["backbone"], digest: None}} == {
        **loaded.card, "backbone": {**loaded.card["backbone"], digest: None}}


def test_the_tflite_backbone_gives_the_keras_extractors_features_and_captions(export_dir, loaded, images):
    fast = load_captioner(str(export_dir), threads=1)
    assert fast.extractor is None and loaded.card["backbone"]["tflite"] == "backbone.tflite"
    arrays = np.stack(list(images.values()))
    for batch in (arrays, arrays[:1], arrays):  # the interpreter resized and back
        np.testing.assert_allclose(fast.features(batch), loaded.features(batch), atol=1e-4)
    found, expected = fast.caption_images(list(arrays)), loaded.caption_images(list(arrays))
    assert [c for c, _ in found] == [c for c, _ in expected]
    np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], rtol=1e-4)
    assert load_captioner(str(export_dir), flip_average=True).extractor is not None  # not as exported: keras


def test_captions_of_bytes_equal_captions_of_decoded_arrays(loaded, images, dataset):
    captioner = Captioner(loaded.card, loaded.extractor, loaded.decoder_models, loaded.vocabulary, batch_size=5)
    files = [(dataset["root"] / "Images" / n).read_bytes() for n in images]
    assert [c for c, _ in captioner.caption_bytes(files)] == [c for c, _ in captioner.caption_images(list(images.values()))]


def test_undecodable_bytes_raise_image_error_naming_the_item(loaded, dataset):
    good = (dataset["root"] / "Images" / "red_1.jpg").read_bytes()
    with pytest.raises(ImageError, match="image 1: ") as err:
        loaded.caption_bytes([good, (dataset["root"] / "Images" / "notes.jpg").read_bytes()])
    assert err.value.kind == "not_an_image"


def test_a_folder_that_is_not_an_export(tmp_path, export_dir):
    with pytest.raises(UsageError, match="not an exported captioner"):
        load_captioner(str(tmp_path))
    damaged = shutil.copytree(export_dir, tmp_path / "damaged")
    (damaged / "decoder.weights.h5").unlink()
    with pytest.raises(UsageError, match="incomplete or damaged export"):
        load_captioner(str(damaged))


def test_the_launch_check_opens_the_image_prior_and_checks_its_digest(tmp_path, export_dir):
    from altvoice.model.export import check_export, read_card

    copy = shutil.copytree(export_dir, tmp_path / "copy")
    check_export(str(copy), read_card(str(copy)))
    np.save(copy / "image_prior.npy", np.load(copy / "image_prior.npy") + 1)  # replaced: other outputs
    with pytest.raises(UsageError, match="does not match the sha256 in its model card"):
        check_export(str(copy), read_card(str(copy)))
    (copy / "image_prior.npy").write_bytes(b"cut short")
    card = read_card(str(copy))
    del card["decoding"]["image_prior_sha256"]  # an export from before cards carried it
    with pytest.raises(UsageError, match="incomplete or damaged export"):
        check_export(str(copy), card)


def test_the_handler_passes_specificity_on(export_dir, loaded, images):
    handler = CaptionModelHandler(str(export_dir), beam_width=3, grounding=False, specificity=5.0)
    found = handler.run_inference(list(images.values()), loaded)
    expected = loaded.caption_images(list(images.values()), beam_width=3, specificity=5.0)
    assert [(r.inference.caption, r.inference.score) for r in found] == expected
    assert expected != loaded.caption_images(list(images.values()), beam_width=3)  # it did rerank


def test_the_handler_pickles_and_captions_keyed_arrays_in_run_inference(export_dir, loaded, images):
    handler = pickle.loads(pickle.dumps(CaptionModelHandler(str(export_dir), beam_width=2, batch_size=4, leave_cores=2)))
    expected = dict(zip(images, loaded.caption_images(list(images.values()), beam_width=2)))

    def matches(results):
        found = dict(results)
        if found.keys() != expected.keys():
            raise BeamAssertException(f"captioned {sorted(found)}")
        for name, result in found.items():  # the tiny export has no classifier: grounding "off"
            caption, score, grounding = result.caption, result.score, result.grounding
            if caption != expected[name][0] or not np.isclose(score, expected[name][1], rtol=1e-5) or grounding != "off":
                raise BeamAssertException(f"{name}: {caption, score, grounding} != {expected[name]}")

    with test_pipeline.TestPipeline() as p:
        results = (
            p
            | beam.Create(list(images.items()))
            | RunInference(KeyedModelHandler(handler))
            | beam.MapTuple(lambda name, result: (name, result.inference))
        )
        assert_that(results, matches)


class BatchSizes(CaptionModelHandler):
    """The handler, answering each image with the size of the batch it came in."""

    def run_inference(self, batch, model, inference_args=None):
        return [PredictionResult(image, len(batch)) for image in batch]


def test_run_inference_batches_double_from_an_eighth_then_stay_full(export_dir, images):
    arrays = list(images.values())[:2] * 25  # 50 images, batches of up to 16
    with test_pipeline.TestPipeline() as p:
        sizes = p | beam.Create(arrays, reshuffle=False) | RunInference(BatchSizes(str(export_dir), batch_size=16))
        assert_that(sizes | beam.Map(lambda result: result.inference),
                    equal_to([2] * 4 + [4] * 4 + [8] * 8 + [16] * 32 + [2] * 2))  # the first size twice


def test_captioner_refuses_arrays_of_the_wrong_size(loaded):
    with pytest.raises(ValueError, match="32x32x3"):
        loaded.caption_images([np.zeros((40, 40, 3), np.uint8)])



def test_grounded_exports_describe_images_with_evidence_and_can_leave_it_out(grounded_model, dataset, tmp_path):
    files = [(dataset["root"] / "Images" / n).read_bytes() for n in dataset["good"]]
    grounded = load_captioner(str(grounded_model))
    found = grounded.describe_bytes(files)
    assert len(found) == len(files) and all(g.grounding != "off" and 0 <= g.confidence <= 1 for g in found)
    assert any(g.objects for g in found)
    plain = load_captioner(str(grounded_model), grounding=False)
    assert plain.classifier is None and all(g.grounding == "off" for g in plain.describe_bytes(files))
    assert [c for c, _ in plain.caption_bytes(files)] == [c for c, _ in grounded.caption_bytes(files)]
    damaged = shutil.copytree(grounded_model, tmp_path / "damaged")
    (damaged / "classifier.tflite").write_bytes(b"\0" * 100)
    with pytest.raises(UsageError, match="incomplete or damaged export"):
        load_captioner(str(damaged))
    assert load_captioner(str(damaged), grounding=False).classifier is None


def test_the_handler_sets_tensorflows_threads_in_a_fresh_worker(export_dir):
    import subprocess
    import sys

    code = ("import os, tensorflow as tf; from altvoice.model.handler import CaptionModelHandler; "
            f"CaptionModelHandler({str(export_dir)!r}, leave_cores=os.cpu_count()).load_model(); "
            "print(tf.config.threading.get_intra_op_parallelism_threads(), "
            "tf.config.threading.get_inter_op_parallelism_threads())")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.split() == ["1", "1"]


def test_the_bundled_ensemble_reranks_against_its_image_prior():
    """Specificity on the bundled five-decoder ensemble (its prior added by bench/image_prior.py): each photo's
    caption is the candidate that best trades its score for distance from the mean training image."""
    import os

    from altvoice.model.decoding import beam_search, normalise, sequence_log_probs
    from altvoice.model.export import BUNDLED_MODEL

    skimage = pytest.importorskip("skimage")
    captioner = load_captioner(BUNDLED_MODEL, grounding=False)
    assert captioner.image_prior.shape == (1280,) and len(captioner.decoder_models) == 5
    assert 0 < captioner.image_prior.min() and captioner.image_prior.max() <= 6  # a mean of ReLU6 features
    photos = [open(os.path.join(os.path.dirname(skimage.__file__), "data", name), "rb").read()
              for name in ("chelsea.png", "coffee.png", "astronaut.png", "motorcycle_left.png")]
    plain = captioner.caption_bytes(photos)
    specific = captioner.caption_bytes(photos, specificity=1.0)
    assert specific != plain  # specificity is off by default; on, it changes some of these photos' captions

    settings = captioner.card["decoding"]
    pixels = [decode_image(p, captioner.image_size) for p in photos]
    state = captioner._start(captioner.decoder.encode(captioner.features(np.stack(pixels))))
    finished = beam_search(captioner.step, state, settings["max_tokens"], settings["beam_width"], settings["alpha"],
                           all_finished=True)
    for row, (caption, score) in zip(finished, specific):
        prior = tuple(np.repeat(s, len(row), axis=0) for s in captioner.prior_state)
        generic = sequence_log_probs(captioner.decoder.step, prior, [ids for _, ids in row], settings["max_tokens"])
        length = [min(len(ids) + 1, settings["max_tokens"]) for _, ids in row]
        traded = {captioner.words(ids): (s - normalise(p, n, settings["alpha"]), s)
                  for (s, ids), p, n in zip(row, generic, length)}
        assert caption in traded and traded[caption] == (max(t for t, _ in traded.values()), score)
