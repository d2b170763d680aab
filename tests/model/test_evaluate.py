"""`altvoice evaluate`: caption a split from image files, score it, and report what could not be captioned."""
import json
import shutil

import pytest

from altvoice import cli
from model import evaluate
from pipelines.options import UsageError


@pytest.fixture
def argv(trained, dataset, tmp_path):
    def make(split_names, *extra, model=None):
        split = tmp_path / "split.txt"
        split.write_text("\n".join(split_names) + "\n")
        root = dataset["root"]
        return ["--model", str(model or trained[0] / "export"), "--captions", str(root / "captions.txt"),
                "--images", str(root / "Images"), "--split-file", str(split), "--output", str(tmp_path / "dev.json"),
                *extra]

    return make


def test_scores_the_split_and_lists_missing_and_broken_images(argv, dataset, tmp_path):
    report = evaluate.run(argv(dataset["dev"] + ["truncated.jpg", "missing.jpg", "no-captions.jpg"], "--batch-size", "3"))
    assert set(report["metrics"]) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr-D", "ROUGE-L"}
    assert all(0 <= v <= 10 for v in report["metrics"].values())
    images = report["images"]
    assert (images["split"], images["with_references"], images["captioned"]) == (len(dataset["dev"]) + 3,
                                                                                  len(dataset["dev"]) + 2, 4)
    assert images["not_found"] == ["missing.jpg"] and list(images["failed"]) == ["truncated.jpg"]
    assert json.loads((tmp_path / "dev.json").read_text()) == report
    captions = json.loads((tmp_path / "dev.captions.json").read_text())
    assert sorted(captions) == sorted(dataset["dev"]) and all(isinstance(c, str) and c for c in captions.values())
    assert report["decoding"] == {"beam_width": 3, "alpha": 0.7, "flip_average": False, "grounding": False}
    assert report["grounding"] == {"off": 4} and report["needs_review"] == 0
    assert report["distinct_captions"] == len(set(captions.values()))


def test_decoding_flags_and_the_model_card_update(argv, dataset, trained, tmp_path):
    model = shutil.copytree(trained[0] / "export", tmp_path / "export")
    report = evaluate.run(argv(dataset["dev"], "--beam-width", "1", "--alpha", "0", "--update-model-card",
                               "--flip-average", "on", model=model))
    assert report["decoding"] == {"beam_width": 1, "alpha": 0.0, "flip_average": True, "grounding": False}
    card = json.loads((model / "model_card.json").read_text())
    assert card["metrics"]["split.txt"] == {**report["metrics"], "beam_width": 1, "alpha": 0.0, "flip_average": True,
                                            "grounding": False, "images": 4, "grounding_paths": {"off": 4},
                                            "distinct_captions": report["distinct_captions"]}
    assert card["metrics"]["dev"] == trained[1]["metrics"]["dev"]


def test_no_reference_captions_for_the_split(argv):
    with pytest.raises(UsageError, match="no caption for any image"):
        evaluate.run(argv(["unknown.jpg"]))


def test_a_model_that_is_not_an_export_exits_2(argv, dataset, tmp_path, capsys):
    assert cli.main(["evaluate", *argv(dataset["dev"], model=tmp_path)]) == 2
    assert "not an exported captioner" in capsys.readouterr().err


def test_grounded_evaluation_counts_paths_and_flags(argv, dataset, grounded_model, tmp_path):
    model = shutil.copytree(grounded_model, tmp_path / "grounded")
    on = evaluate.run(argv(dataset["dev"], "--update-model-card", model=model))
    assert json.loads((model / "model_card.json").read_text())["metrics"]["split.txt grounded"]["grounding"] is True
    off = evaluate.run(argv(dataset["dev"], "--grounding", "off", model=grounded_model))
    assert on["decoding"]["grounding"] is True and off["decoding"]["grounding"] is False
    assert sum(on["grounding"].values()) == on["images"]["captioned"] == len(dataset["dev"])
    assert set(on["grounding"]) <= {"agrees", "unverified", "constrained", "fallback"} and off["grounding"] == {"off": 4}
    assert 0 <= on["needs_review"] <= len(dataset["dev"])
