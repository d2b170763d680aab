"""Fixtures for the model tests: the shared drawn dataset, preprocessed once, and one short training run."""
import hashlib

import keras
import pytest

from altvoice.model import backbones, train
from altvoice.model.backbones import build_feature_extractor
from altvoice.pipelines import preprocess

SEED = ["--seed", "7"]


@pytest.fixture(scope="session", autouse=True)
def tflite_once_per_backbone():
    """Exports convert their backbone to TFLite (~10 s); most exports here share one backbone (the same layers,
    flip averaging included, and weights): the first export converts it, the others reuse its bytes. What the
    conversion gives is checked against the keras extractor in test_export.py."""
    converted, convert = {}, backbones.to_tflite

    def once(extractor):
        weights = hashlib.sha256(b"".join(w.tobytes() for w in extractor.get_weights())).hexdigest()
        key = (extractor.name, extractor.input_shape, tuple(type(layer).__name__ for layer in extractor.layers), weights)
        if key not in converted:
            converted[key] = convert(extractor)
        return converted[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backbones, "to_tflite", once)
        yield


@pytest.fixture(scope="session")
def prepared(dataset, tmp_path_factory):
    """Preprocess output of the drawn dataset, with a saved (random) backbone so that exports match the features."""
    root = tmp_path_factory.mktemp("prepared")
    keras.utils.set_random_seed(0)
    weights = root / "backbone.weights.h5"
    build_feature_extractor("mobilenet_v2", "none", 32).layers[-1].save_weights(weights)
    data = dataset["root"]
    preprocess.run([
        "--captions", str(data / "captions.txt"), "--images", str(data / "Images"),
        "--train-split", str(data / "train.txt"), "--dev-split", str(data / "dev.txt"),
        "--output", str(root / "data"), "--min-word-count", "1", "--max-length", "12", "--glove", str(data / "glove.txt"),
        "--backbone", "mobilenet_v2", "--image-size", "32", "--backbone-weights", str(weights),
    ])
    return root / "data"


@pytest.fixture(scope="session")
def prepared_grid(dataset, prepared, tmp_path_factory):
    """The drawn dataset preprocessed with --features grid at 64 px: a 2x2 grid of MobileNetV2 cells."""
    root = tmp_path_factory.mktemp("prepared_grid")
    data = dataset["root"]
    preprocess.run([
        "--captions", str(data / "captions.txt"), "--images", str(data / "Images"),
        "--train-split", str(data / "train.txt"), "--dev-split", str(data / "dev.txt"),
        "--output", str(root / "data"), "--min-word-count", "1", "--max-length", "12", "--glove", str(data / "glove.txt"),
        "--backbone", "mobilenet_v2", "--image-size", "64", "--features", "grid",
        "--backbone-weights", str(prepared.parent / "backbone.weights.h5"),
    ])
    return root / "data"


def train_args(data, output, *extra) -> list[str]:
    return ["--data", str(data), "--output", str(output), "--batch-size", "16", "--units", "32", *SEED, *extra]


@pytest.fixture(scope="session")
def train_argv():
    """train_argv(data, output, *flags): the flags of a small, seeded training run."""
    return train_args


@pytest.fixture(scope="session")
def trained(prepared, tmp_path_factory):
    """A short training run: (output dir, model card)."""
    output = tmp_path_factory.mktemp("trained")
    card = train.run(train_args(prepared, output, "--epochs", "3", "--learning-rate", "0.01"))
    return output, card
