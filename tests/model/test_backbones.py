"""Backbones: uint8 images in, pooled features out, input scaling inside the model."""
import keras
import numpy as np
import pytest

from altvoice.model.backbones import BACKBONES, build_feature_extractor, get_backbone


def test_feature_extractor_takes_uint8_and_returns_feature_size(tmp_path):
    model = build_feature_extractor("mobilenet_v2", "none", 32)
    images = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    features = model.predict_on_batch(images)
    assert features.shape == (3, BACKBONES["mobilenet_v2"].feature_size)
    path = tmp_path / "fx.keras"
    model.save(path)
    np.testing.assert_allclose(keras.models.load_model(path).predict_on_batch(images), features, atol=1e-5)


def test_weights_file_is_loaded(tmp_path):
    model = build_feature_extractor("mobilenet_v2", "none", 32)
    path = tmp_path / "base.weights.h5"
    model.layers[-1].save_weights(path)
    again = build_feature_extractor("mobilenet_v2", str(path), 32)
    images = np.full((1, 32, 32, 3), 90, np.uint8)
    np.testing.assert_allclose(again.predict_on_batch(images), model.predict_on_batch(images), atol=1e-5)


def test_unknown_backbone_names_the_choices():
    with pytest.raises(ValueError, match="mobilenet_v2"):
        get_backbone("vgg99")


def test_flip_average_is_the_mean_of_the_image_and_its_mirror_image():
    keras.utils.set_random_seed(3)
    plain = build_feature_extractor("mobilenet_v2", "none", 32)
    flipped = build_feature_extractor("mobilenet_v2", "none", 32, flip_average=True)
    flipped.set_weights(plain.get_weights())
    images = np.random.default_rng(1).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    expected = (plain.predict_on_batch(images) + plain.predict_on_batch(images[:, :, ::-1])) / 2
    np.testing.assert_allclose(flipped.predict_on_batch(images), expected, atol=1e-5)
    np.testing.assert_allclose(flipped.predict_on_batch(images[:, :, ::-1]), expected, atol=1e-5)
