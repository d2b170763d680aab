"""The Python API on the bundled model: describe paths and bytes, one bad image among good ones, speak."""
import wave
import io

import pytest

import altvoice
from testdata import encode, scene_image, without_image_prior


@pytest.fixture(scope="module")
def model():
    return altvoice.load_model()


def test_describe_paths_and_bytes_in_order_with_a_bad_one(model, tmp_path):
    import os

    import skimage

    cat = os.path.join(os.path.dirname(skimage.__file__), "data", "chelsea.png")
    found = model.describe([cat, encode(scene_image((200, 30, 30)), "JPEG"), b"not an image", tmp_path / "nope.jpg"])
    assert [f.image for f in found] == [cat, "#1", "#2", str(tmp_path / "nope.jpg")]
    assert found[0].alt_text == "A photo of a cat." and found[0].objects[0]["word"] == "cat"
    assert 0 <= found[0].confidence <= 1 and found[0].error is None
    assert found[1].caption and found[1].alt_text.endswith(".")
    assert "not a recognised image" in found[2].error and found[2].caption is None
    assert found[3].error and found[3].caption is None


def test_specificity_reaches_the_captioner():
    import os

    import skimage

    photos = [os.path.join(os.path.dirname(skimage.__file__), "data", n) for n in ("astronaut.png", "coffee.png")]
    specific = altvoice.load_model(grounding=False, specificity=1.0)
    expected = specific.captioner.caption_bytes([open(p, "rb").read() for p in photos], specificity=1.0)
    assert expected != specific.captioner.caption_bytes([open(p, "rb").read() for p in photos])
    assert [d.caption for d in specific.describe(photos)] == [c for c, _ in expected]


def test_specificity_needs_an_image_prior(tiny_model, tmp_path):
    model = without_image_prior(tiny_model, tmp_path / "export")
    with pytest.raises(ValueError, match="has no image prior"):
        altvoice.load_model(str(model), specificity=0.3)
    with pytest.raises(ValueError, match="must be a number of at least 0"):
        altvoice.load_model(specificity=float("nan"))
    photo = encode(scene_image((200, 30, 30)), "JPEG")
    assert altvoice.load_model(str(model), specificity=0).describe([photo])[0].caption


def test_speak_returns_a_whole_audio_file():
    with wave.open(io.BytesIO(altvoice.speak("A cat on a sofa.", backend="espeak"))) as audio:
        assert audio.getnframes() / audio.getframerate() > 0.5


def test_import_altvoice_is_light():
    import subprocess
    import sys

    code = "import altvoice, sys; print('tensorflow' in sys.modules, 'apache_beam' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == ["False", "False"]
