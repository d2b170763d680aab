"""Captioning CPU per photo of several exports, side by side: backbone + beam search, as the caption job runs them.

    .venv/bin/python bench/decoder_speed.py --models model/pretrained DIR [--images 320] [--rounds 3] [--name X]

Loads each export once (TFLite backbone, grounding off), then captions the same N Flickr8k dev photos
with each in turn, `--rounds` times, and reports the median process CPU-seconds per photo (user + system,
all threads) and the ratio to the first model. CPU time rather than wall time, so a busy machine
disturbs it less.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import FLICKR, save, split_names, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--name", default="", help="results file suffix: bench/results/decoder_speed[_NAME].json")
    args = parser.parse_args()
    from altvoice.images import decode_image
    from altvoice.model.export import load_captioner

    captioners = [load_captioner(m, grounding=False) for m in args.models]
    names = split_names("dev", args.images)
    pixels = {}
    for captioner in captioners:
        size = captioner.image_size
        if size not in pixels:
            pixels[size] = [decode_image(open(os.path.join(FLICKR, "Images", n), "rb").read(), size) for n in names]
    for captioner in captioners:  # traced once before timing
        captioner.caption_images(pixels[captioner.image_size][: captioner.batch_size])
    seconds = [[] for _ in captioners]
    for _ in range(args.rounds):
        for i, captioner in enumerate(captioners):
            start = time.process_time()
            captioner.caption_images(pixels[captioner.image_size])
            seconds[i].append(time.process_time() - start)
    per_photo = [statistics.median(s) / len(names) for s in seconds]
    results = {"images": len(names), "rounds": args.rounds, "models": [
        {"model": os.path.basename(os.path.abspath(m)), "decoder": c.card["decoder"].get("kind", "merge"),
         "decoders": len(c.decoder_models), "cpu_s_per_photo": round(p, 4),
         "vs_first": round(p / per_photo[0], 3)} for m, c, p in zip(args.models, captioners, per_photo)]}
    print(table([("model", "decoder", "CPU s/photo", "vs first"),
                 *[(r["model"], f"{r['decoders']}x {r['decoder']}", r["cpu_s_per_photo"], r["vs_first"])
                   for r in results["models"]]]))
    print(save("_".join(filter(None, ["decoder_speed", args.name])), results))


if __name__ == "__main__":
    main()
