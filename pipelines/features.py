"""Image features, once per image: robust decoding, then batched backbone calls through RunInference."""
from typing import Any, Iterable, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

from altvoice.errors import tagged_error
from altvoice.images import MAX_PIXELS, ImageError, decode_sizes

FAILED = "failed"  # tag of (key, error kind) of images that could not be decoded


class FeatureExtractorHandler(ModelHandler[np.ndarray, PredictionResult, Any]):
    """RunInference handler for a keras backbone: uint8 [size, size, 3] arrays -> feature vectors (or grids).

    Holds only its configuration, so it pickles; the model is built once per worker.
    """

    def __init__(self, backbone: str, weights: str, image_size: int, batch_size: int = 64, grid: bool = False):
        """`grid`: the backbone's grid of cells [cells, feature_size] per image instead of the pooled vector."""
        self._backbone, self._weights, self._size, self._batch_size = backbone, weights, image_size, batch_size
        self._grid = grid

    def load_model(self):
        """The backbone as one traced function: any batch size, no retracing for a short last batch."""
        import tensorflow as tf

        from altvoice.model.backbones import build_feature_extractor

        model = build_feature_extractor(self._backbone, self._weights, self._size, grid=self._grid)
        signature = tf.TensorSpec([None, self._size, self._size, 3], tf.uint8)
        return tf.function(lambda images: model(images, training=False), input_signature=[signature])

    def run_inference(self, batch: Sequence[np.ndarray], model, inference_args=None) -> Iterable[PredictionResult]:
        features = model(np.stack(batch)).numpy()
        beam.metrics.Metrics.counter("altvoice", "images_featurized").inc(len(batch))
        return [PredictionResult(None, f) for f in features]

    def batch_elements_kwargs(self):
        return {"min_batch_size": self._batch_size, "max_batch_size": self._batch_size}

    def get_metrics_namespace(self) -> str:
        return "altvoice_features"


class DecodeImage(beam.DoFn):
    """(key, bytes) -> (key, uint8 array); bad files go to the error output and (key, kind) to FAILED.

    The key is a name, or a tuple whose first item is the name (as ReadImages' stamped keys).
    With `keep_bytes` the key becomes (key, bytes), for steps that need the original file later.
    With `object_size` the value is a pair of arrays from one decode: (image_size, object_size),
    for the captioner and the object classifier.
    """

    def __init__(self, image_size: int, keep_bytes: bool = False, object_size: int | None = None,
                 max_pixels: int = MAX_PIXELS):
        self.image_size, self.keep_bytes, self.object_size = image_size, keep_bytes, object_size
        self.max_pixels = max_pixels

    def process(self, element):
        key, data = element
        try:
            if self.object_size:
                pixels = tuple(decode_sizes(data, (self.image_size, self.object_size), self.max_pixels))
            else:
                pixels = decode_sizes(data, (self.image_size,), self.max_pixels)[0]
            yield ((key, data) if self.keep_bytes else key), pixels
        except Exception as err:  # one undecodable file must never stop the run
            kind = err.kind if isinstance(err, ImageError) else "corrupt_image"
            yield beam.pvalue.TaggedOutput(FAILED, (key, kind))
            yield tagged_error(key if isinstance(key, str) else key[0], "decode", kind, str(err) or type(err).__name__)


class ExtractFeatures(beam.PTransform):
    """(name, image bytes) -> outputs `features` (name, float32 vector or grid), `failed` names and `errors`."""

    def __init__(self, handler: FeatureExtractorHandler, image_size: int):
        super().__init__()
        self.handler, self.image_size = handler, image_size

    def expand(self, images):
        decoded = images | "Decode" >> beam.ParDo(DecodeImage(self.image_size)).with_outputs(FAILED, "errors", main="ok")
        features = (
            decoded.ok
            | "Backbone" >> RunInference(KeyedModelHandler(self.handler))
            | "Vector" >> beam.MapTuple(lambda name, result: (name, result.inference))
        )
        failed = decoded[FAILED] | "FailedNames" >> beam.MapTuple(lambda name, kind: name)
        return {"features": features, FAILED: failed, "errors": decoded.errors}
