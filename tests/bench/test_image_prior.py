"""bench/image_prior.py: an export without its prior gets back the one train wrote, named in its card, and
loads with it; data from another backbone is refused."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parents[2]


def run(*args):
    return subprocess.run([sys.executable, str(ROOT / "bench" / "image_prior.py"), *map(str, args)],
                          capture_output=True, text=True)


def test_restores_the_prior_train_wrote(tiny_model, tmp_path):
    from altvoice.model.export import load_captioner

    model = tmp_path / "export"
    shutil.copytree(tiny_model, model)
    written = np.load(model / "image_prior.npy")
    card = json.loads((model / "model_card.json").read_text())
    del card["decoding"]["image_prior"]
    (model / "model_card.json").write_text(json.dumps(card))
    (model / "image_prior.npy").unlink()
    assert load_captioner(str(model), grounding=False).image_prior is None

    done = run("--model", model, "--data", tiny_model.parents[1] / "prep")
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(model / "image_prior.npy"), written, rtol=1e-6)
    assert json.loads((model / "model_card.json").read_text())["decoding"]["image_prior"] == "image_prior.npy"
    assert load_captioner(str(model), grounding=False).image_prior.shape == written.shape


def test_refuses_data_from_another_backbone(tiny_model, tmp_path):
    model = tmp_path / "export"
    shutil.copytree(tiny_model, model)
    card = json.loads((model / "model_card.json").read_text())
    card["backbone"]["image_size"] = 64
    (model / "model_card.json").write_text(json.dumps(card))
    done = run("--model", model, "--data", tiny_model.parents[1] / "prep")
    assert done.returncode == 1 and "mobilenet_v2@32 features; the export's backbone is mobilenet_v2@64" in done.stderr
    assert json.loads((model / "model_card.json").read_text()) == card
