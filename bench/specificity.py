"""Distinct captions vs quality: the dev split captioned at several --specificity weights, side by side.

    .venv/bin/python bench/specificity.py --model DIR [--weights 0,0.1,0.2,0.3] [--grounding off]

For each weight, `altvoice evaluate` on Flickr8k's 1000 dev photos (beam width and alpha of the export):
BLEU-4, CIDEr-D, and how many of the 1000 captions are distinct (an archive's photos differ, so should
their alt texts); also the most repeated caption. Results go to bench/results/specificity_<name>.json.
"""
import argparse
import collections
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import FLICKR, save, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--weights", default="0,0.1,0.2,0.3")
    parser.add_argument("--grounding", default="off", choices=("on", "off"))
    parser.add_argument("--name", default=None, help="results file suffix (default: the model folder's name)")
    args = parser.parse_args()
    from altvoice.model import evaluate

    results = {"model": os.path.basename(os.path.abspath(args.model)), "grounding": args.grounding, "runs": []}
    with tempfile.TemporaryDirectory(prefix="altvoice-specificity-") as work:
        for weight in [float(w) for w in args.weights.split(",")]:
            output = os.path.join(work, f"{weight}.json")
            report = evaluate.run(["--model", args.model, "--captions", os.path.join(FLICKR, "Flickr8k.token.txt"),
                                   "--images", os.path.join(FLICKR, "Images"), "--split-file",
                                   os.path.join(FLICKR, "Flickr_8k.devImages.txt"), "--output", output,
                                   "--specificity", str(weight), "--grounding", args.grounding])
            with open(output[: -len(".json")] + ".captions.json") as f:
                captions = json.load(f)
            caption, times = collections.Counter(captions.values()).most_common(1)[0]
            results["runs"].append({"specificity": weight, **report["metrics"],
                                    "distinct_captions": report["distinct_captions"], "images": len(captions),
                                    "most_repeated": {"caption": caption, "times": times}})
    rows = [("specificity", "BLEU-4", "CIDEr-D", "distinct", "most repeated")]
    rows += [(r["specificity"], r["BLEU-4"], r["CIDEr-D"], f"{r['distinct_captions']}/{r['images']}",
              f"{r['most_repeated']['times']}x {r['most_repeated']['caption']}") for r in results["runs"]]
    print(table(rows))
    print(save(f"specificity_{args.name or results['model']}", results))


if __name__ == "__main__":
    main()
