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
            alternately, twice each, each in a fresh process with fresh outputs: wall seconds
            (start-up included), photos/s and CPU-seconds per photo (user + system, from wait4).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.common import FLICKR, save, split_names, table  # noqa: E402


def image_folder(work: str, count: int) -> str:
    """A folder holding copies of the first `count` Flickr8k images (train then dev)."""
    folder = os.path.join(work, f"images_{count}")
    os.makedirs(folder, exist_ok=True)
    names = (split_names("train") + split_names("dev"))[:count]
    for name in names:
        shutil.copyfile(os.path.join(FLICKR, "Images", name), os.path.join(folder, name))
    return folder


def measure(command: list[str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in MiB) of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"{command[1:4]} failed: {process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


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
    from altvoice.model.decoder import BANNED_IDS, build_caption_model
    from altvoice.model.export import load_captioner
    from altvoice.transforms.captions import END_ID, START_ID

    captioner = load_captioner(model_dir)
    extractor = captioner.extractor
    decoders = []  # the whole training model(s), as the seed used it, one per decoder of an ensemble
    for name in captioner.card.get("decoders", ["decoder.weights.h5"]):
        decoders.append(build_caption_model(**captioner.card["decoder"]))
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


def compare_plain_loop(count: int, model: str, tts: str) -> dict:
    """The caption job against the plain loop on the same photos, alternated, twice each."""
    commands = {
        "job": lambda folder, out: [sys.executable, "-m", "altvoice.cli", "caption", "--input", folder,
                                    "--output", out, "--model", model, "--tts", tts],
        "loop": lambda folder, out: [sys.executable, os.path.join(HERE, "plain_loop.py"), "--input", folder,
                                     "--output", out, "--model", model, "--tts", tts],
    }
    runs = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as work:
        folder = image_folder(work, count)
        for run in range(2):
            for name, command in commands.items():
                wall, cpu, peak = measure(command(folder, os.path.join(work, f"out_{name}_{run}")))
                runs[name].append({"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "peak_mib": peak})
    best = {name: min(r, key=lambda x: x["wall_s"]) for name, r in runs.items()}
    result = {"images": count, "tts": tts, "runs": runs}
    for name, b in best.items():
        result[f"{name}_images_per_s"] = round(count / b["wall_s"], 2)
        result[f"{name}_cpu_s_per_image"] = round(min(r["cpu_s"] for r in runs[name]) / count, 3)
    result["job_vs_loop_images_per_s"] = round(result["job_images_per_s"] / result["loop_images_per_s"], 3)
    result["job_vs_loop_cpu_per_image"] = round(result["job_cpu_s_per_image"] / result["loop_cpu_s_per_image"], 3)
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
    args = parser.parse_args()
    results = {"images": args.images, "tts": args.tts, "model": os.path.basename(args.model), "cpus": os.cpu_count()}
    if args.plain_images:
        results = compare_plain_loop(args.plain_images, args.model, args.tts)
        print(table([("measure", "value"), *results.items()]))
        print("results in", save(f"caption_vs_plain_loop_{args.tts}", results))
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
