"""The plain loop a user could write with altvoice's own API: the caption job's fair baseline.

    .venv/bin/python bench/plain_loop.py --input FOLDER --output FOLDER [--tts piper] [--batch-size 64]

One process: load the model once, describe the photos in batches, then speak each alt text in turn
with one synthesizer and write a JSON record and the audio beside it. Run by bench/caption_throughput.py
in a fresh process, side by side with `altvoice caption` on the same photos.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--tts", default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)

    import altvoice
    from altvoice.tts import default_backend, get_synthesizer

    model = altvoice.load_model(args.model)
    synthesizer = get_synthesizer(args.tts or default_backend())
    os.makedirs(args.output, exist_ok=True)
    names = sorted(os.listdir(args.input))
    for start in range(0, len(names), args.batch_size):
        batch = names[start : start + args.batch_size]
        for name, found in zip(batch, model.describe([os.path.join(args.input, n) for n in batch], args.batch_size)):
            with open(os.path.join(args.output, f"{name}.json"), "w", encoding="utf-8") as f:
                json.dump(found._asdict(), f)
            if synthesizer and found.alt_text:
                with open(os.path.join(args.output, f"{name}.{synthesizer.extension}"), "wb") as f:
                    f.write(synthesizer.synthesize(found.alt_text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
