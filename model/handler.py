"""RunInference handler for an exported captioner: uint8 RGB arrays -> PredictionResult((caption, score)).

Use with KeyedModelHandler on (key, array) elements, the arrays decoded and resized to the model's
image size (`altvoice.images.decode_image(data, load_captioner(dir).image_size)`, or the card's
backbone.image_size). The handler holds only its configuration, so it pickles; each worker loads the
model once.
"""
from typing import Any, Iterable, Sequence

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult


class CaptionModelHandler(ModelHandler[np.ndarray, PredictionResult, Any]):
    def __init__(self, model_dir: str, beam_width: int | None = None, batch_size: int = 32):
        """`beam_width` None uses the export's; `batch_size` caps the images captioned per call."""
        self._model_dir, self._beam_width, self._batch_size = model_dir, beam_width, batch_size

    def load_model(self):
        from model.export import load_captioner

        return load_captioner(self._model_dir, self._batch_size)

    def run_inference(self, batch: Sequence[np.ndarray], model, inference_args=None) -> Iterable[PredictionResult]:
        captions = model.caption_images(list(batch), beam_width=self._beam_width)
        return [PredictionResult(image, caption) for image, caption in zip(batch, captions)]

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": self._batch_size}

    def get_metrics_namespace(self) -> str:
        return "altvoice_captions"
