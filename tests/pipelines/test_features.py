"""The backbone in RunInference: features as the extractor computes them, with the mirror image's on request."""
import apache_beam as beam
import keras
import numpy as np
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import BeamAssertException, assert_that

from model.backbones import build_feature_extractor
from pipelines.features import FeatureExtractorHandler


def test_flip_gives_the_image_and_mirror_image_features(tmp_path):
    keras.utils.set_random_seed(5)
    weights = tmp_path / "backbone.weights.h5"
    build_feature_extractor("mobilenet_v2", "none", 32).layers[-1].save_weights(weights)
    images = {f"im{i}": a for i, a in enumerate(np.random.default_rng(2).integers(0, 255, (5, 32, 32, 3), np.uint8))}
    extractor = build_feature_extractor("mobilenet_v2", str(weights), 32)
    pixels = np.stack(list(images.values()))
    expected = dict(zip(images, zip(extractor.predict_on_batch(pixels), extractor.predict_on_batch(pixels[:, :, ::-1]))))
    handler = FeatureExtractorHandler("mobilenet_v2", str(weights), 32, batch_size=2, flip=True)

    def matches(results):
        found = dict(results)
        if found.keys() != expected.keys():
            raise BeamAssertException(f"featurized {sorted(found)}")
        for name, (features, flipped) in found.items():
            if not (np.allclose(features, expected[name][0], atol=1e-5)
                    and np.allclose(flipped, expected[name][1], atol=1e-5)):
                raise BeamAssertException(f"{name}: features differ from the extractor's")

    with test_pipeline.TestPipeline() as p:
        results = (p | beam.Create(list(images.items())) | RunInference(KeyedModelHandler(handler))
                   | beam.MapTuple(lambda name, result: (name, result.inference)))
        assert_that(results, matches)
