"""Gives an export trained before image priors existed its image prior (what --specificity reranks against).

    .venv/bin/python bench/image_prior.py --model model/pretrained --data PREP

PREP: a preprocess output of the export's backbone, weights and image size (pooled or grid; a grid's cells
average to the pooled vector, so a grid output serves a pooled export too).
`altvoice train` writes the prior itself; this is for the bundled ensemble, whose decoders predate it.
Writes image_prior.npy into the export and names it, with its sha256, in the card's decoding settings.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    from altvoice.model.data import Features
    from altvoice.model.export import IMAGE_PRIOR_FILE, save_image_prior
    from altvoice.model.train import image_prior

    card_path = os.path.join(args.model, "model_card.json")
    with open(card_path) as f:
        card = json.load(f)
    with open(os.path.join(args.data, "summary.json")) as f:
        summary = json.load(f)
    problem = mismatch(card, summary)
    if problem:
        sys.exit(f"--data {args.data}: {problem}")
    prior = image_prior(Features(args.data, "train", summary), pooled=not card["backbone"].get("grid"))
    card["decoding"].update(save_image_prior(args.model, prior))
    with open(card_path, "w") as f:
        json.dump(card, f, indent=2)
    print(f"{args.model}: {IMAGE_PRIOR_FILE}, shape {list(prior.shape)}, the mean of "
          f"{summary['splits']['train']['images']} train images")


def mismatch(card: dict, summary: dict) -> str | None:
    """Why a preprocess output's features are not the ones the export was trained on, or None."""
    backbone = card["backbone"]
    if (summary["backbone"], summary["image_size"]) != (backbone["name"], backbone["image_size"]):
        return (f"{summary['backbone']}@{summary['image_size']} features; the export's backbone is "
                f"{backbone['name']}@{backbone['image_size']}")
    if os.path.basename(summary["backbone_weights"]) != os.path.basename(backbone["weights"]):
        return f"features from {summary['backbone_weights']}; the export's backbone weights are {backbone['weights']}"
    if backbone.get("grid") and len(summary["feature_shape"]) != 2:
        return "pooled features; the export attends over a grid (preprocess --features grid)"
    return None


if __name__ == "__main__":
    main()
