"""bench/image_prior.py: an export without its prior gets back the one train wrote, named in its card, and
loads with it; a grid preprocess output gives a pooled export the mean of its cells; features of another
backbone, other weights or without the grid an export attends over are refused, the export untouched."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from altvoice.records import make_image_example
from altvoice.model.export import sha256
from bench.image_prior import mismatch
from testdata import without_image_prior

ROOT = Path(__file__).parents[2]


def run(*args):
    return subprocess.run([sys.executable, str(ROOT / "bench" / "image_prior.py"), *map(str, args)],
                          capture_output=True, text=True)


@pytest.fixture
def without_prior(tiny_model, tmp_path):
    """A copy of the tiny export with its prior taken out, and the prior train wrote."""
    written = np.load(tiny_model / "image_prior.npy")
    return without_image_prior(tiny_model, tmp_path / "export"), written


def test_restores_the_prior_train_wrote(without_prior, tiny_model):
    from altvoice.model.export import load_captioner

    model, written = without_prior
    assert load_captioner(str(model), grounding=False).image_prior is None
    done = run("--model", model, "--data", tiny_model.parents[1] / "prep")
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(model / "image_prior.npy"), written, rtol=1e-6)
    decoding = json.loads((model / "model_card.json").read_text())["decoding"]
    assert decoding["image_prior"] == "image_prior.npy"
    assert decoding["image_prior_sha256"] == sha256(str(model / "image_prior.npy"))
    assert load_captioner(str(model), grounding=False).image_prior.shape == written.shape


def test_a_grid_output_gives_a_pooled_export_the_mean_of_its_cells(without_prior, tiny_model, tmp_path):
    import tensorflow as tf

    model, written = without_prior
    summary = json.loads((tiny_model.parents[1] / "prep" / "summary.json").read_text())
    grids = np.random.default_rng(0).uniform(0, 6, (3, 4, written.shape[0])).astype(np.float16)
    prep = tmp_path / "grid"
    (prep / "features").mkdir(parents=True)
    grid_summary = {**summary, "features": "grid", "feature_shape": [4, written.shape[0]]}
    (prep / "summary.json").write_text(json.dumps(grid_summary))
    with tf.io.TFRecordWriter(str(prep / "features" / "train-00000-of-00001.tfrecord")) as records:
        for i, grid in enumerate(grids):
            records.write(make_image_example(f"{i}.jpg", grid))
    done = run("--model", model, "--data", prep)
    assert done.returncode == 0, done.stderr
    mean_cell = grids.astype(np.float32).mean(axis=(0, 1))
    np.testing.assert_allclose(np.load(model / "image_prior.npy"), mean_cell, rtol=1e-5)


def test_refuses_data_from_another_backbone_and_leaves_the_export(tiny_model, tmp_path):
    model = tmp_path / "export"
    shutil.copytree(tiny_model, model)
    card = json.loads((model / "model_card.json").read_text())
    card["backbone"]["image_size"] = 64
    (model / "model_card.json").write_text(json.dumps(card))
    done = run("--model", model, "--data", tiny_model.parents[1] / "prep")
    assert done.returncode == 1 and "mobilenet_v2@32 features; the export's backbone is mobilenet_v2@64" in done.stderr
    assert json.loads((model / "model_card.json").read_text()) == card


def test_names_other_weights_and_a_missing_grid():
    card = {"backbone": {"name": "mobilenet_v2", "image_size": 160, "weights": "shared/models/m.weights.h5",
                         "grid": True}}
    summary = {"backbone": "mobilenet_v2", "image_size": 160, "backbone_weights": "/data/models/m.weights.h5",
               "feature_shape": [25, 1280]}
    assert mismatch(card, summary) is None
    assert "pooled features; the export attends over a grid" in mismatch(card, {**summary, "feature_shape": [1280]})
    assert "features from /data/other.h5" in mismatch(card, {**summary, "backbone_weights": "/data/other.h5"})
