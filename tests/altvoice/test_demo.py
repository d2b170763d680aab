"""The demo captions and speaks scikit-image's photographs and prints a table of them."""
from altvoice import demo


def test_demo_writes_captions_audio_and_a_table(tmp_path, tiny_model, capsys):
    table = demo.run(["--output", str(tmp_path / "demo"), "--model", str(tiny_model), "--tts", "espeak"])
    rows = table.splitlines()[2:]
    assert [row.split("|")[1].strip() for row in rows] == list(demo.PHOTOS)
    for name in demo.PHOTOS:
        assert (tmp_path / "demo" / f"{name}.json").exists() and (tmp_path / "demo" / f"{name}.wav").exists()
        assert float([r for r in rows if name in r][0].split("|")[4]) > 0.3
    assert table in capsys.readouterr().out
