"""Pretrained CNN backbones as feature extractors: uint8 RGB images in, pooled features (or grids) out.

Each backbone is a keras.applications model without its top, wrapped so that it takes
[batch, size, size, 3] uint8 images and applies its own input preprocessing, so callers
never need to know which scaling a backbone expects. With `flip_average` the features are the
mean of the image's and its mirror image's (test-time augmentation), at twice the backbone's cost.
Exports also carry the extractor as a float32 TFLite model (`to_tflite`, run by `TFLiteBackbone`):
the same features to about 1e-5, for half the CPU of TensorFlow's graph and no tracing at load.
"""
import threading
from typing import NamedTuple

import keras


class Backbone(NamedTuple):
    constructor: str  # attribute of keras.applications
    preprocess_module: str  # keras.applications submodule holding preprocess_input
    default_size: int
    feature_size: int


BACKBONES = {
    "inception_v3": Backbone("InceptionV3", "inception_v3", 299, 2048),
    "mobilenet_v2": Backbone("MobileNetV2", "mobilenet_v2", 224, 1280),
    "resnet50": Backbone("ResNet50", "resnet50", 224, 2048),
    "efficientnet_b0": Backbone("EfficientNetB0", "efficientnet", 224, 1280),
    "densenet121": Backbone("DenseNet121", "densenet", 224, 1024),
}


def get_backbone(name: str) -> Backbone:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(sorted(BACKBONES))}") from None


def weights_argument(weights: str):
    """'imagenet' (downloaded by keras), 'none' (random: for tests) or a weights file path."""
    if weights in ("none", "", None):
        return None
    if weights == "imagenet":
        return "imagenet"
    return _local_copy(weights)


def imagenet_weights_problem(name: str, host: str = "storage.googleapis.com") -> str | None:
    """Why keras could not fetch a backbone's ImageNet weights here (not in ~/.keras/models and
    `host` unreachable), or None when it can."""
    import os
    import socket

    cache = os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "models")
    prefix = get_backbone(name).preprocess_module
    if os.path.isdir(cache) and any(f.startswith(prefix) and "notop" in f for f in os.listdir(cache)):
        return None
    try:
        socket.create_connection((host, 443), timeout=5).close()
        return None
    except OSError as err:
        return f"its ImageNet weights are not cached and {host} can't be reached ({err})"


def _local_copy(path: str) -> str:
    """Keras loads weights from local files only: copy a remote (gs://, ...) file to a temp dir."""
    if "://" not in path or path.startswith("file://"):
        return path.removeprefix("file://")
    import os
    import tempfile

    import fsspec

    local = os.path.join(tempfile.mkdtemp(prefix="altvoice-weights-"), os.path.basename(path))
    with fsspec.open(path, "rb") as src, open(local, "wb") as dst:
        dst.write(src.read())
    return local


def build_feature_extractor(name: str, weights: str = "imagenet", image_size: int | None = None,
                            flip_average: bool = False, grid: bool = False) -> keras.Model:
    """A keras model: uint8 images [batch, size, size, 3] -> float32 features [batch, feature_size], or with
    `grid` the last feature map's cells [batch, rows * columns, feature_size] (row by row; their mean is the
    pooled vector). Flip averaging mirrors the mirror image's grid back, so each cell keeps its place."""
    spec = get_backbone(name)
    size = image_size or spec.default_size
    base = getattr(keras.applications, spec.constructor)(
        input_shape=(size, size, 3), include_top=False, weights=weights_argument(weights),
        pooling=None if grid else "avg")
    images = keras.Input((size, size, 3), dtype="uint8", name="images")
    pixels = ImagePreprocess(name)(images)
    features = base(pixels)
    if flip_average:
        mirrored = base(keras.ops.flip(pixels, axis=2))
        features = keras.layers.Average(name="flip_average")(
            [features, keras.ops.flip(mirrored, axis=2) if grid else mirrored])
    if grid:
        rows, columns, channels = features.shape[1:]
        features = keras.layers.Reshape((rows * columns, channels), name="cells")(features)
    return keras.Model(images, features, name=f"{name}_{'grid' if grid else 'features'}")


def feature_shape(name: str, image_size: int | None = None, grid: bool = False) -> list[int]:
    """The per-image feature shape of a backbone: [feature_size], or with `grid` [cells, feature_size]."""
    if not grid:
        return [get_backbone(name).feature_size]
    return list(build_feature_extractor(name, "none", image_size, grid=True).output.shape[1:])


@keras.saving.register_keras_serializable("altvoice")
class ImagePreprocess(keras.layers.Layer):
    """The backbone's own input scaling, as a saveable layer: uint8 RGB -> float32."""

    def __init__(self, backbone: str, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        module = getattr(keras.applications, get_backbone(backbone).preprocess_module)
        self._preprocess = module.preprocess_input

    def call(self, images):
        return self._preprocess(keras.ops.cast(images, "float32"))

    def get_config(self):
        return {**super().get_config(), "backbone": self.backbone}


def to_tflite(extractor: keras.Model) -> bytes:
    """The feature extractor (flip averaging included) as a float32 TFLite model taking any batch size."""
    import tempfile

    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="altvoice-tflite-") as saved:
        extractor.export(saved, format="tf_saved_model", verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(saved).convert()


class TFLiteBackbone:
    """A feature extractor written by `to_tflite`: uint8 images [N, size, size, 3] -> features [N, F] (or grids
    [N, cells, F]),
    on `threads` threads (None: TFLite's default). Shared by threads: one batch runs at a time."""

    def __init__(self, model_path: str, threads: int | None = None):
        from altvoice.model.classifier import tflite_interpreter

        self._interpreter = tflite_interpreter(model_path, threads)
        self._input = self._interpreter.get_input_details()[0]
        self._output_index = self._interpreter.get_output_details()[0]["index"]
        self._batch = None
        self._lock = threading.Lock()

    def __call__(self, images):
        with self._lock:
            if len(images) != self._batch:
                self._interpreter.resize_tensor_input(self._input["index"], [len(images), *self._input["shape"][1:]])
                self._interpreter.allocate_tensors()
                self._batch = len(images)
            self._interpreter.set_tensor(self._input["index"], images)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output_index).copy()
