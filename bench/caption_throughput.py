"""Caption job throughput and memory on Flickr8k photos: the pipeline vs a naive loop, side by side.

    .venv/bin/python bench/caption_throughput.py --model DIR --images 500 [--tts piper|espeak]

  pipeline  `altvoice caption` end to end (read, decode, batched beam search, speech, writes),
            in a fresh process; wall time for N images, and the steady-state rate from a run of
            --small images and a run of N (the difference removes start-up);
  naive     one image at a time in one process: decode, features with model.predict, greedy
            decoding with one model.predict over the whole prefix per word (the seed's way; an
            ensemble's decoders each predict and their log-probabilities are averaged),
            synthesise, write;
  memory    peak RSS of the caption process for --memory-images (e.g. 1000 and 4000 images);
  grounding with --grounding-images N: the pipeline on N images with grounded captions (the object
            classifier and word detectors) and with `--grounding off`, alternately, twice each.
  plain     with --plain-images N: the pipeline and bench/plain_loop.py (the loop a user could write
            with altvoice's API: describe in batches of 64, speak each caption in turn, write),
            alternately, three times each (--rounds), each in a fresh process with fresh outputs: wall seconds
            (start-up included), photos/s and CPU-seconds per photo (user + system, from wait4), medians.
            With --baseline REV, the job as it was at git revision REV runs alongside (from a worktree of
            REV, its own bundled model), and the captions of every job run are compared with it.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.common import FLICKR, measure, save, split_names, table  # noqa: E402


def image_folder(work: str, count: int) -> str:
    """A folder holding copies of the first `count` Flickr8k images (train then dev)."""
    folder = os.path.join(work, f"images_{count}")
    os.makedirs(folder, exist_ok=True)
    names = (split_names("train") + split_names("dev"))[:count]
    for name in names:
        shutil.copyfile(os.path.join(FLICKR, "Images", name), os.path.join(folder, name))
    return folder


def run_caption(folder: str, output: str, model: str, tts: str, extra=()) -> tuple[float, int]:
    """(wall seconds, peak RSS in MiB) of one `altvoice caption` process."""
    command = [sys.executable, "-m", "altvoice.cli", "caption", "--input", folder, "--output", output,
               "--model", model, "--tts", tts, *extra]
    seconds, _, peak = measure(command)
    with open(os.path.join(output, "manifest.jsonl")) as f:
        written = sum(json.loads(line)["status"] == "written" for line in f)
    if written != len(os.listdir(folder)):
        raise RuntimeError(f"{written} of {len(os.listdir(folder))} images written")
    return seconds, peak


def naive_loop(folder: str, output: str, model_dir: str, tts: str, count: int) -> float:
    """Images/s of the one-at-a-time loop."""
    from altvoice.images import decode_image
    from altvoice.outputs import alt_text
    from altvoice.tts import get_synthesizer
    from altvoice.model.decoder import BANNED_IDS
    from altvoice.model.decoders import build_decoder
    from altvoice.model.export import load_captioner
    from altvoice.transforms.captions import END_ID, START_ID

    captioner = load_captioner(model_dir, keras_backbone=True)
    extractor = captioner.extractor
    decoders = []  # the whole training model(s), as the seed used it, one per decoder of an ensemble
    for name in captioner.card.get("decoders", ["decoder.weights.h5"]):
        decoders.append(build_decoder(captioner.card["decoder"]))
        decoders[-1].load_weights(os.path.join(model_dir, name))
    synthesizer = get_synthesizer(tts)
    max_tokens = captioner.card["decoding"]["max_tokens"]
    names = sorted(os.listdir(folder))[:count]
    os.makedirs(output, exist_ok=True)

    def one(name):
        with open(os.path.join(folder, name), "rb") as f:
            pixels = decode_image(f.read(), captioner.image_size)
        features = extractor.predict(pixels[None], verbose=0)
        tokens = [START_ID]
        while len(tokens) < max_tokens:
            log_probs = []
            for decoder in decoders:
                logits = decoder.predict([features, np.asarray([tokens])], verbose=0)[0, -1]
                log_probs.append(logits - np.logaddexp.reduce(logits))
            scores = np.mean(log_probs, axis=0)
            scores[list(BANNED_IDS)] = -np.inf
            tokens.append(int(np.argmax(scores)))
            if tokens[-1] == END_ID:
                break
        text = alt_text(captioner.words([t for t in tokens[1:] if t != END_ID]))
        with open(os.path.join(output, name + ".json"), "w") as f:
            json.dump({"caption": text}, f)
        if synthesizer:
            with open(os.path.join(output, f"{name}.{synthesizer.extension}"), "wb") as f:
                f.write(synthesizer.synthesize(text))

    one(names[0])  # warm-up: model traces, voice load
    start = time.perf_counter()
    for name in names:
        one(name)
    return len(names) / (time.perf_counter() - start)


def compare_grounding(count: int, model: str, tts: str) -> dict:
    """Wall seconds of the caption job with and without grounding on the same photos, alternated."""
    seconds = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as work:
        folder = image_folder(work, count)
        for run in range(2):
            for mode in ("off", "on"):
                out = os.path.join(work, f"out_{mode}_{run}")
                seconds[mode].append(run_caption(folder, out, model, tts, ("--grounding", mode))[0])
    on, off = min(seconds["on"]), min(seconds["off"])
    return {"images": count, "tts": tts, "grounding_on_s": seconds["on"], "grounding_off_s": seconds["off"],
            "on_images_per_s": round(count / on, 2), "off_images_per_s": round(count / off, 2),
            "throughput_on_vs_off": round(off / on, 3)}


# Runs altvoice's CLI from another checkout: its packages found before the installed (editable) one.
OTHER_CHECKOUT = """import importlib.util, runpy, sys
root = sys.argv.pop(1)
folders = {"altvoice": "altvoice", "altvoice.model": "model", "altvoice.pipelines": "pipelines",
           "altvoice.transforms": "transforms"}
class Checkout:
    def find_spec(self, name, path=None, target=None):
        if name in folders:
            where = f"{root}/{folders[name]}"
            return importlib.util.spec_from_file_location(name, f"{where}/__init__.py", submodule_search_locations=[where])
sys.meta_path.insert(0, Checkout())
assert __import__("altvoice").__file__.startswith(root)
runpy.run_module("altvoice.cli", run_name="__main__")
"""


def checkout(work: str, revision: str) -> str:
    """A detached worktree of this repository at `revision`, inside `work`."""
    path = os.path.join(work, f"checkout-{revision}")
    subprocess.run(["git", "-C", os.path.join(HERE, ".."), "worktree", "add", "--detach", path, revision],
                   check=True, capture_output=True)
    return path


def alt_texts(output: str) -> dict:
    with open(os.path.join(output, "manifest.jsonl")) as f:
        return {entry["image"]: entry.get("alt_text") for entry in map(json.loads, f)}


def compare_plain_loop(count: int, model: str, tts: str, baseline: str | None = None, rounds: int = 3) -> dict:
    """The caption job against the plain loop (and the job at git revision `baseline`) on the same
    photos, alternated, `rounds` runs each; rates and CPU-seconds are each side's medians."""
    job = ["caption", "--tts", tts]
    commands = {
        "job": lambda folder, out: [sys.executable, "-m", "altvoice.cli", *job, "--model", model,
                                    "--input", folder, "--output", out],
        "loop": lambda folder, out: [sys.executable, os.path.join(HERE, "plain_loop.py"), "--input", folder,
                                     "--output", out, "--model", model, "--tts", tts],
    }
    runs = {name: [] for name in (*commands, *(["baseline"] if baseline else []))}
    with tempfile.TemporaryDirectory() as work:
        folder = image_folder(work, count)
        if baseline:
            old = checkout(work, baseline)
            commands["baseline"] = lambda folder, out: [sys.executable, "-c", OTHER_CHECKOUT, old, *job,
                                                        "--input", folder, "--output", out]
        try:
            for run in range(rounds):
                for name, command in commands.items():
                    out = os.path.join(work, f"out_{name}_{run}")
                    wall, cpu, peak = measure(command(folder, out))
                    runs[name].append({"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "peak_mib": peak})
                    if name != "loop":
                        runs[name][-1]["alt_texts"] = alt_texts(out)
        finally:
            if baseline:
                subprocess.run(["git", "-C", os.path.join(HERE, ".."), "worktree", "remove", "--force", old])
    result = {"images": count, "tts": tts, "cpus": os.cpu_count(), "baseline": baseline}
    if baseline:
        first = runs["baseline"][0]["alt_texts"]
        result["alt_texts_differing_from_baseline"] = max(
            sum(r["alt_texts"][k] != first[k] for k in first) for r in runs["job"] + runs["baseline"])
    for r in runs["job"] + runs.get("baseline", []):
        del r["alt_texts"]
    result["runs"] = runs
    for name, r in runs.items():
        result[f"{name}_images_per_s"] = round(count / statistics.median(x["wall_s"] for x in r), 2)
        result[f"{name}_cpu_s_per_image"] = round(statistics.median(x["cpu_s"] for x in r) / count, 3)
    result["job_vs_loop_images_per_s"] = round(result["job_images_per_s"] / result["loop_images_per_s"], 3)
    result["job_vs_loop_cpu_per_image"] = round(result["job_cpu_s_per_image"] / result["loop_cpu_s_per_image"], 3)
    if baseline:
        result["job_vs_baseline_cpu_per_image"] = round(
            result["job_cpu_s_per_image"] / result["baseline_cpu_s_per_image"], 3)
    return result


def main():
    from altvoice.tts import default_backend
    from altvoice.model.export import BUNDLED_MODEL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=BUNDLED_MODEL)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--small", type=int, default=50, help="images in the start-up run")
    parser.add_argument("--naive-images", type=int, default=100)
    parser.add_argument("--tts", default=default_backend())
    parser.add_argument("--memory-images", default="1000,4000", help="comma-separated sizes, '' to skip")
    parser.add_argument("--memory-tts", default="espeak")
    parser.add_argument("--grounding-images", type=int, default=0, help="compare grounding on/off on N images "
                        "(and run nothing else)")
    parser.add_argument("--plain-images", type=int, default=0, help="compare the job with the plain loop on N "
                        "images (and run nothing else)")
    parser.add_argument("--baseline", help="with --plain-images: also run the job as it was at this git revision")
    parser.add_argument("--rounds", type=int, default=3, help="with --plain-images: runs of each side")
    args = parser.parse_args()
    results = {"images": args.images, "tts": args.tts, "model": os.path.basename(args.model), "cpus": os.cpu_count()}
    if args.plain_images:
        results = compare_plain_loop(args.plain_images, args.model, args.tts, args.baseline, args.rounds)
        print(table([("measure", "value"), *results.items()]))
        name = f"caption_vs_plain_loop_{args.tts}" + (f"_and_{args.baseline}" if args.baseline else "")
        print("results in", save(name, results))
        return
    if args.grounding_images:
        results = compare_grounding(args.grounding_images, args.model, args.tts)
        print(table([("measure", "value"), *results.items()]))
        print("results in", save(f"caption_grounding_{args.tts}", results))
        return
    with tempfile.TemporaryDirectory() as work:
        if args.images:  # --images 0: memory only
            folder, small = image_folder(work, args.images), image_folder(work, args.small)
            small_s, _ = run_caption(small, os.path.join(work, "out_small"), args.model, args.tts)
            full_s, _ = run_caption(folder, os.path.join(work, "out_full"), args.model, args.tts)
            naive = naive_loop(folder, os.path.join(work, "out_naive"), args.model, args.tts, args.naive_images)
            steady = (args.images - args.small) / (full_s - small_s)
            results.update({
                "pipeline_wall_s": round(full_s, 1), "pipeline_images_per_s": round(args.images / full_s, 2),
                "pipeline_steady_images_per_s": round(steady, 2), "naive_images_per_s": round(naive, 2),
                "end_to_end_vs_naive": round(args.images / full_s / naive, 2),
                "steady_vs_naive": round(steady / naive, 2),
            })
        for count in [int(c) for c in args.memory_images.split(",") if c]:
            seconds, peak = run_caption(image_folder(work, count), os.path.join(work, f"out_mem_{count}"),
                                        args.model, args.memory_tts)
            results[f"memory_{count}_images_peak_mib"] = peak
            results[f"memory_{count}_images_wall_s"] = round(seconds, 1)
        sizes = [int(c) for c in args.memory_images.split(",") if c]
        if len(sizes) == 2:
            results["peak_memory_ratio"] = round(
                results[f"memory_{sizes[1]}_images_peak_mib"] / results[f"memory_{sizes[0]}_images_peak_mib"], 3)
    print(table([("measure", "value"), *results.items()]))
    print("results in", save(f"caption_throughput_{args.tts}" if args.images else "caption_memory", results))


if __name__ == "__main__":
    main()
