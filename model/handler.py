"""RunInference handler for an exported captioner: images -> PredictionResult(model.grounding.Grounded).

Use with KeyedModelHandler on (key, pixels) elements, decoded with `altvoice.images.decode_sizes`:
pixels is one uint8 RGB array at the card's backbone.image_size, or, for grounded captions, a pair
(that array, the same image at the object classifier's size, model.classifier.IMAGE_SIZE).
The handler holds only its configuration, so it pickles; each worker loads the model (and its
classifier) once.
"""
from typing import Any, Iterable, Sequence

from apache_beam.ml.inference.base import ModelHandler, PredictionResult


class CaptionModelHandler(ModelHandler[Any, PredictionResult, Any]):
    def __init__(self, model_dir: str, beam_width: int | None = None, batch_size: int = 64,
                 grounding: bool = True, min_confidence: float | None = None, leave_cores: int = 0,
                 specificity: float | None = None):
        """`beam_width` and `specificity` None use the export's; `batch_size` caps the images captioned per
        call; `grounding` False ignores the export's classifier; see Captioner.describe_images. `leave_cores`:
        cores the worker keeps for other work (speech), so TensorFlow runs its ops on the rest (at
        least one; 0: TensorFlow's default, one thread per core), set before the model loads when
        TensorFlow has not started yet."""
        self._model_dir, self._beam_width, self._batch_size = model_dir, beam_width, batch_size
        self._grounding, self._min_confidence, self._leave_cores = grounding, min_confidence, leave_cores
        self._specificity = specificity

    def load_model(self):
        import os

        import tensorflow as tf

        from altvoice.model.export import load_captioner

        # the cores this worker leaves TensorFlow and the TFLite backbone (None: their defaults)
        threads = max(1, (os.cpu_count() or 1) - self._leave_cores) if self._leave_cores else None
        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(threads)
            except RuntimeError:  # TensorFlow already runs in this process: its threads stay as they are
                pass
        return load_captioner(self._model_dir, self._batch_size, grounding=self._grounding, threads=threads)

    def run_inference(self, batch: Sequence[Any], model, inference_args=None) -> Iterable[PredictionResult]:
        pairs = isinstance(batch[0], tuple)
        images = [item[0] for item in batch] if pairs else list(batch)
        objects = [item[1] for item in batch] if pairs else None
        found = model.describe_images(images, objects, beam_width=self._beam_width,
                                      min_confidence=self._min_confidence, specificity=self._specificity)
        return [PredictionResult(image, result) for image, result in zip(images, found)]

    def batch_elements_kwargs(self):
        """Batches that double from an eighth of `batch_size` up to it, then stay full (a bundle's last
        one smaller): the first captions reach the speech threads while the rest are captioned, and
        the search's fixed cost (about 0.08 CPU-s a call) is paid a few times. BatchElements' own
        targets (overhead, duration, a random spread) are off: they kept most batches at 1-8 images."""
        return {"min_batch_size": max(1, self._batch_size // 8), "max_batch_size": self._batch_size,
                "target_batch_overhead": None, "target_batch_duration_secs": None,
                "target_batch_duration_secs_including_fixed_cost": float("inf"), "variance": 0}

    def get_metrics_namespace(self) -> str:
        return "altvoice_captions"
