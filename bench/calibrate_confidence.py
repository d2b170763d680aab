"""Fits the grounded captions' `confidence` on held-out captions and reports what the review flag catches.

    .venv/bin/python bench/calibrate_confidence.py [--model DIR] [--dev-images 1000] [--write]

Captions two labelled sets with the model (grounding on) and marks each caption right or wrong:
  general-dev    (../shared/data/general-dev) wrong when it misses the main subject, names a word
                 the photo clearly lacks, or names a person on a photo without people;
  Flickr8k dev   wrong when it names an object (a person, an animal, a vehicle, ...) of a kind that
                 none of the five reference captions names.
Then fits a logistic regression of "right" on the caption's score, the evidence's probability and
the grounding path (weighted so both sets count equally), and prints, at the card's review
threshold, the share of wrong captions among flagged and unflagged ones in each set. `--write`
stores the coefficients in the model card's grounding settings.
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.breadth import score as breadth_score  # noqa: E402
from bench.common import FLICKR, SHARED, split_names, table  # noqa: E402
from altvoice.model.detectors import fit_logistic  # noqa: E402
from altvoice.model.grounding import PATHS  # noqa: E402

BUNDLED = os.path.join(HERE, "..", "model", "pretrained")


def describe_files(captioner, paths: list[str]) -> list:
    found = []
    for start in range(0, len(paths), 64):
        data = []
        for path in paths[start : start + 64]:
            with open(path, "rb") as f:
                data.append(f.read())
        found += captioner.describe_bytes(data)
    return found


def general_rows(captioner, folder: str) -> list[dict]:
    with open(os.path.join(folder, "labels.jsonl"), encoding="utf-8") as f:
        labels = [json.loads(line) for line in f if line.strip()]
    found = describe_files(captioner, [os.path.join(folder, "images", x["image"]) for x in labels])
    records = {x["image"]: {"alt_text": g.caption} for x, g in zip(labels, found)}
    wrong = {r["image"]: r["wrong"] for r in breadth_score(records, labels)["rows"]}
    return [{"set": "general-dev", "found": g, "wrong": wrong[x["image"]]} for x, g in zip(labels, found)]


def flickr_rows(captioner, count: int) -> list[dict]:
    references = {}
    with open(os.path.join(FLICKR, "Flickr8k.token.txt"), encoding="utf-8") as f:
        for line in f:
            key, _, caption = line.rstrip("\n").partition("\t")
            references.setdefault(key.rsplit("#", 1)[0], []).append(caption.lower())
    images = split_names("dev", count)
    found = describe_files(captioner, [os.path.join(FLICKR, "Images", n) for n in images])
    kinds_of = captioner.grounder.kinds_of
    rows = []
    for name, g in zip(images, found):
        named = [kinds_of[w] for w in set(g.caption.split()) if w in kinds_of]
        said = set().union(*[kinds_of[w] for ref in references[name] for w in ref.split() if w in kinds_of])
        rows.append({"set": "flickr8k-dev", "found": g, "wrong": any(not (k & said) for k in named),
                     "names_subject": bool(named)})
    return rows


def features(rows: list[dict]) -> np.ndarray:
    """[score, evidence probability, one-hot path] per row (the confidence formula's terms)."""
    return np.array([[r["found"].score, r["found"].evidence, *[float(r["found"].grounding == p) for p in PATHS]]
                     for r in rows])


def report(rows: list[dict]) -> list[tuple]:
    lines = [("set", "captions", "flagged", "wrong when flagged", "wrong when not flagged")]
    for name in sorted({r["set"] for r in rows}):
        part = [r for r in rows if r["set"] == name]
        flagged = [r for r in part if r["found"].needs_review]
        kept = [r for r in part if not r["found"].needs_review]
        share = lambda rs: f"{sum(r['wrong'] for r in rs) / len(rs):.3f} ({sum(r['wrong'] for r in rs)}/{len(rs)})" if rs else "-"  # noqa: E731
        lines.append((name, len(part), len(flagged), share(flagged), share(kept)))
    return lines


def main(argv=None):
    from altvoice.model.export import load_captioner, read_card, write_card

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=BUNDLED)
    parser.add_argument("--general", default=os.path.join(SHARED, "data", "general-dev"))
    parser.add_argument("--dev-images", type=int, default=1000)
    parser.add_argument("--write", action="store_true", help="store the fitted coefficients in the model card")
    args = parser.parse_args(argv)
    captioner = load_captioner(args.model)
    if captioner.classifier is None:
        raise SystemExit(f"{args.model} has no object classifier: nothing to calibrate")
    rows = general_rows(captioner, args.general) + flickr_rows(captioner, args.dev_images)
    print(table(report(rows)))
    x, y = features(rows), np.array([0.0 if r["wrong"] else 1.0 for r in rows])
    sets = np.array([r["set"] for r in rows])
    weights = np.array([len(rows) / (2 * np.sum(sets == s)) for s in sets])
    beta = fit_logistic(x, y, weights)
    fitted = {"bias": round(float(beta[0]), 3), "score": round(float(beta[1]), 3),
              "evidence": round(float(beta[2]), 3), **{p: round(float(b), 3) for p, b in zip(PATHS, beta[3:])}}
    print("fitted confidence:", json.dumps(fitted))
    if args.write:
        card = read_card(args.model)
        card["grounding"].setdefault("settings", {})["confidence"] = fitted
        write_card(args.model, card)
        captioner = load_captioner(args.model)
        rows = general_rows(captioner, args.general) + flickr_rows(captioner, args.dev_images)
        print(table(report(rows)))



if __name__ == "__main__":
    main()
