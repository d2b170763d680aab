"""The demo captions and speaks scikit-image's photographs and prints a table of them."""
import json

from altvoice import demo


def test_demo_writes_captions_audio_and_a_table(tmp_path, tiny_model, capsys):
    table = demo.run(["--output", str(tmp_path / "demo"), "--model", str(tiny_model), "--tts", "espeak"])
    rows = table.splitlines()[2:]
    assert [row.split("|")[1].strip() for row in rows] == list(demo.PHOTOS)
    for name in demo.PHOTOS:
        assert (tmp_path / "demo" / f"{name}.json").exists() and (tmp_path / "demo" / f"{name}.wav").exists()
        assert float([r for r in rows if name in r][0].split("|")[4]) > 0.3
    assert (tmp_path / "demo" / "review" / "index.html").exists()
    assert table in capsys.readouterr().out


def test_the_demo_as_shipped_bundled_model_and_default_voice(tmp_path):
    """What `make demo` runs: the bundled model (grounding on) and the default offline voice."""
    from altvoice.tts import default_backend

    table = demo.run(["--output", str(tmp_path / "demo")])
    captions = {row.split("|")[1].strip(): row.split("|")[2].strip() for row in table.splitlines()[2:]}
    assert captions["chelsea.png"] == "A photo of a cat."  # not a person, not a dog
    assert captions["coffee.png"] == "A photo of a coffee."
    assert not any(word in captions["rocket.jpg"].lower() for word in ("dog", "man", "woman", "girl"))
    for name in demo.PHOTOS:
        record = json.loads((tmp_path / "demo" / f"{name}.json").read_text())
        assert record["voice"].startswith(default_backend() + ":") and record["model_id"].startswith("altvoice")
        assert 0 <= record["confidence"] <= 1 and record["objects"]
        assert demo.audio_seconds(str(tmp_path / "demo" / record["audio"])) > 0.5
