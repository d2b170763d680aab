"""Caption quality on Flickr8k: preprocess 6000 train + 1000 dev images, train with early stopping on dev,
export, and evaluate the export on the dev images from their JPEG files, as users run it.

    .venv/bin/python bench/train_quality.py [--data /tmp/flickr8k-prep/out] [--output /tmp/flickr8k-train] \
        [--results NAME] [-- train flags]   # e.g. -- --train-embeddings --decay 0.5 --patience 4 --seed 1

MobileNetV2@160 (../shared weights) and GloVe 200-d (../shared). The preprocess output is reused when
--data already holds one. Targets: BLEU-1 >= 0.60, BLEU-4 >= 0.18, CIDEr-D >= 0.45 with beam 3.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.common import FLICKR, GLOVE, MOBILENET_WEIGHTS, save, table  # noqa: E402

ALTVOICE = os.path.join(os.path.dirname(sys.executable), "altvoice")
TARGETS = {"BLEU-1": 0.60, "BLEU-4": 0.18, "CIDEr-D": 0.45}


def altvoice(*args) -> float:
    """Runs one altvoice command; returns its wall time."""
    start = time.perf_counter()
    subprocess.run([ALTVOICE, *map(str, args)], check=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/tmp/flickr8k-prep/out", help="preprocess output, reused if there")
    parser.add_argument("--output", default="/tmp/flickr8k-train", help="training output (replaced)")
    parser.add_argument("--beam-width", type=int, default=3)
    parser.add_argument("--results", default="train_quality", help="name of the results file in bench/results")
    parser.add_argument("train_flags", nargs="*", help="more `altvoice train` flags, after --")
    args = parser.parse_args()

    data, results = args.data, {"train_flags": args.train_flags}
    if not os.path.exists(os.path.join(data, "summary.json")):
        results["preprocess_seconds"] = altvoice(
            "preprocess", "--captions", f"{FLICKR}/Flickr8k.token.txt", "--images", f"{FLICKR}/Images",
            "--train-split", f"{FLICKR}/Flickr_8k.trainImages.txt", "--dev-split", f"{FLICKR}/Flickr_8k.devImages.txt",
            "--output", data, "--backbone", "mobilenet_v2", "--image-size", "160",
            "--backbone-weights", MOBILENET_WEIGHTS, "--min-word-count", "5", "--glove", GLOVE)
    shutil.rmtree(args.output, ignore_errors=True)
    results["train_seconds"] = altvoice("train", "--data", data, "--output", args.output, *args.train_flags)
    metrics_file = os.path.join(args.output, "dev_metrics.json")
    results["evaluate_seconds"] = altvoice(
        "evaluate", "--model", f"{args.output}/export", "--captions", f"{FLICKR}/Flickr8k.token.txt",
        "--images", f"{FLICKR}/Images", "--split-file", f"{FLICKR}/Flickr_8k.devImages.txt",
        "--output", metrics_file, "--beam-width", args.beam_width, "--update-model-card")
    with open(metrics_file) as f:
        results["dev"] = json.load(f)
    with open(f"{args.output}/export/model_card.json") as f:
        results["training"] = json.load(f)["training"]
    metrics = results["dev"]["metrics"]
    rows = [("metric", "dev", "target")] + [(k, v, TARGETS.get(k, "")) for k, v in metrics.items()]
    rows += [("train wall s", round(results["train_seconds"]), ""),
             ("epochs (best)", f"{results['training']['epochs']} ({results['training']['best_epoch']})", "")]
    print(table(rows))
    print(f"-> {save(args.results, results)}")


if __name__ == "__main__":
    main()
