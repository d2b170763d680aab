"""The backbone in RunInference: features as the extractor computes them, flip-averaged on request."""
import apache_beam as beam
import keras
import numpy as np
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import BeamAssertException, assert_that

from model.backbones import build_feature_extractor
from pipelines.features import FeatureExtractorHandler


def test_handler_features_equal_the_flip_averaged_extractor(tmp_path):
    keras.utils.set_random_seed(5)
    weights = tmp_path / "backbone.weights.h5"
    build_feature_extractor("mobilenet_v2", "none", 32).layers[-1].save_weights(weights)
    images = {f"im{i}": a for i, a in enumerate(np.random.default_rng(2).integers(0, 255, (5, 32, 32, 3), np.uint8))}
    extractor = build_feature_extractor("mobilenet_v2", str(weights), 32, flip_average=True)
    expected = dict(zip(images, extractor.predict_on_batch(np.stack(list(images.values())))))
    handler = FeatureExtractorHandler("mobilenet_v2", str(weights), 32, batch_size=2, flip_average=True)

    def matches(results):
        found = dict(results)
        if found.keys() != expected.keys():
            raise BeamAssertException(f"featurized {sorted(found)}")
        for name, features in found.items():
            if not np.allclose(features, expected[name], atol=1e-5):
                raise BeamAssertException(f"{name}: features differ from the extractor's")

    with test_pipeline.TestPipeline() as p:
        results = (p | beam.Create(list(images.items())) | RunInference(KeyedModelHandler(handler))
                   | beam.MapTuple(lambda name, result: (name, result.inference)))
        assert_that(results, matches)
