"""`altvoice evaluate`: caption a split from image files, score it, and report what could not be captioned."""
import json
import math
import re
import shutil
from collections import Counter

import pytest
from testdata import SCENES

from altvoice import cli
from altvoice.flags import UsageError
from altvoice.model import evaluate

ROUNDING = 0.5e-4 + 1e-12  # the report's metrics are rounded to 4 decimals


def coco_scores(captions: dict[str, str], references: dict[str, list[str]]) -> dict:
    """BLEU-1..4, CIDEr-D and ROUGE-L of {image: caption}, written again from the coco-caption definitions
    rather than taken from model.metrics (it agrees with pycocoevalcap's scorers on tokenized text)."""
    images = sorted(captions)
    words = {i: re.sub(r"[^\w\s]", "", captions[i].lower()).split() for i in images}
    refs = {i: [t for t in (re.sub(r"[^\w\s]", "", r.lower()).split() for r in references[i]) if t] for i in images}

    def grams(tokens, n):
        return Counter(tuple(tokens[k : k + n]) for k in range(len(tokens) - n + 1))

    scores, precisions = {}, 1.0
    c = sum(len(words[i]) for i in images)
    r = sum(sorted((abs(len(t) - len(words[i])), len(t)) for t in refs[i])[0][1] for i in images)
    for n in range(1, 5):
        matched = sum(min(k, max(grams(t, n)[g] for t in refs[i]))
                      for i in images for g, k in grams(words[i], n).items())
        total = sum(max(0, len(words[i]) - n + 1) for i in images)
        precisions *= (matched + 1e-15) / (total + 1e-9)  # coco's smoothing, visible when nothing matched
        scores[f"BLEU-{n}"] = precisions ** (1 / n) * (1.0 if c >= r else math.exp(1 - r / c) if c else 0.0)

    df = Counter(g for i in images for g in {g for t in refs[i] for n in range(1, 5) for g in grams(t, n)})

    def tfidf(tokens, n):
        return {g: k * (math.log(len(images)) - math.log(max(1, df[g]))) for g, k in grams(tokens, n).items()}

    cider = []
    for i in images:
        total = 0.0
        for t in refs[i]:
            bigrams = max(0, len(words[i]) - 1) - max(0, len(t) - 1)  # coco's length: the bigram count
            penalty = math.exp(-(bigrams**2) / (2 * 6.0**2))
            for n in range(1, 5):
                h, g = tfidf(words[i], n), tfidf(t, n)
                norms = math.hypot(*h.values()) * math.hypot(*g.values())
                dot = sum(min(v, g.get(key, 0.0)) * g.get(key, 0.0) for key, v in h.items())
                total += (dot / norms if norms else 0.0) * penalty
        cider.append(10 * total / 4 / len(refs[i]))
    scores["CIDEr-D"] = sum(cider) / len(cider)

    def lcs(a, b):
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for x in range(len(a)):
            for y in range(len(b)):
                table[x + 1][y + 1] = table[x][y] + 1 if a[x] == b[y] else max(table[x][y + 1], table[x + 1][y])
        return table[-1][-1]

    rouge = []
    for i in images:
        common = [lcs(words[i], t) for t in refs[i]]
        p = max(common) / len(words[i]) if words[i] else 0.0
        rec = max(m / len(t) for m, t in zip(common, refs[i]))
        rouge.append(2.44 * p * rec / (rec + 1.44 * p) if p and rec else 0.0)
    scores["ROUGE-L"] = sum(rouge) / len(rouge)
    return scores


def scene_references(images) -> dict[str, list[str]]:
    """The drawn dataset's reference captions of each image, from its scene (the name's prefix)."""
    return {image: SCENES[image.split("_")[0]][1] for image in images}


def assert_scores_the_written_captions(report, output):
    """The report's metrics are those of the captions the run wrote, against each image's own references,
    over exactly the captioned images (so CIDEr-D's image count and document frequencies are theirs)."""
    captions = json.loads(output.with_name(output.stem + ".captions.json").read_text())
    assert report["metrics"] == pytest.approx(coco_scores(captions, scene_references(captions)), abs=ROUNDING)
    return captions


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
    assert_scores_the_written_captions(report, tmp_path / "dev.json")
    images = report["images"]
    assert (images["split"], images["with_references"], images["captioned"]) == (len(dataset["dev"]) + 3,
                                                                                  len(dataset["dev"]) + 2, 4)
    assert images["not_found"] == ["missing.jpg"] and list(images["failed"]) == ["truncated.jpg"]
    assert json.loads((tmp_path / "dev.json").read_text()) == report
    captions = json.loads((tmp_path / "dev.captions.json").read_text())
    assert sorted(captions) == sorted(dataset["dev"]) and all(isinstance(c, str) and c for c in captions.values())
    assert report["decoding"] == {"beam_width": 3, "alpha": 0.9, "specificity": 0.0, "flip_average": False,
                                  "grounding": False}
    assert report["grounding"] == {"off": 4} and report["needs_review"] == 0
    assert report["distinct_captions"] == len(set(captions.values()))


def test_decoding_flags_and_the_model_card_update(argv, dataset, trained, tmp_path):
    model = shutil.copytree(trained[0] / "export", tmp_path / "export")
    report = evaluate.run(argv(dataset["dev"], "--beam-width", "1", "--alpha", "0", "--update-model-card",
                               "--flip-average", "on", model=model))
    assert report["decoding"] == {"beam_width": 1, "alpha": 0.0, "specificity": 0.0, "flip_average": True,
                                  "grounding": False}
    assert_scores_the_written_captions(report, tmp_path / "dev.json")
    card = json.loads((model / "model_card.json").read_text())
    assert card["metrics"]["split.txt"] == {**report["metrics"], "beam_width": 1, "alpha": 0.0, "specificity": 0.0,
                                            "flip_average": True,
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
    assert_scores_the_written_captions(on, tmp_path / "dev.json")
    assert json.loads((model / "model_card.json").read_text())["metrics"]["split.txt grounded"]["grounding"] is True
    off = evaluate.run(argv(dataset["dev"], "--grounding", "off", model=grounded_model))
    assert_scores_the_written_captions(off, tmp_path / "dev.json")
    assert on["decoding"]["grounding"] is True and off["decoding"]["grounding"] is False
    assert sum(on["grounding"].values()) == on["images"]["captioned"] == len(dataset["dev"])
    assert set(on["grounding"]) <= {"agrees", "unverified", "constrained", "fallback"} and off["grounding"] == {"off": 4}
    assert 0 <= on["needs_review"] <= len(dataset["dev"])


def test_each_caption_is_scored_against_its_own_image_references(argv, dataset, tmp_path, monkeypatch):
    """The tiny model's captions can be alike for every image, which would hide images paired with another
    image's references; here each caption names the colour the captioner saw, so a mix-up changes the scores."""
    load = evaluate.load_captioner

    def colour_captioner(*args, **kwargs):
        captioner = load(*args, **kwargs)
        describe = captioner.describe_images

        def describe_by_colour(images, *rest, **decoding):
            def scene(pixels):  # the drawn background colour, from a corner pixel
                corner = pixels[0, 0].astype(float)
                return min(SCENES, key=lambda s: sum((corner - SCENES[s][0]) ** 2))

            return [found._replace(caption=f"a {scene(pixels)} square") for found, pixels in
                    zip(describe(images, *rest, **decoding), images)]

        captioner.describe_images = describe_by_colour
        return captioner

    monkeypatch.setattr(evaluate, "load_captioner", colour_captioner)
    report = evaluate.run(argv(dataset["dev"] + ["truncated.jpg", "missing.jpg"], "--batch-size", "3"))
    captions = assert_scores_the_written_captions(report, tmp_path / "dev.json")
    assert captions == {image: f"a {image.split('_')[0]} square" for image in dataset["dev"]}
    # the check can tell: the same captions against the references shifted by one image score otherwise
    images = sorted(captions)
    shifted = dict(zip(images, scene_references(images[1:] + images[:1]).values()))
    assert abs(coco_scores(captions, shifted)["CIDEr-D"] - report["metrics"]["CIDEr-D"]) > 1
