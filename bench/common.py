"""Shared helpers for the benchmarks: where ../shared is, picking images, timing, writing results."""
import json
import os
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("ALTVOICE_SHARED", os.path.join(HERE, "..", "..", "shared"))
FLICKR = os.path.join(SHARED, "data", "flickr8k")
MOBILENET_WEIGHTS = os.path.join(SHARED, "models", "mobilenet_v2_1.00_160_imagenet_notop.weights.h5")
GLOVE = os.path.join(SHARED, "data", "glove", "glove.6B.200d.flickr8k.txt")
RESULTS = os.path.join(HERE, "results")


def split_names(split: str, count: int | None = None) -> list[str]:
    """The first `count` image names of a Flickr8k split ('train' or 'dev')."""
    path = os.path.join(FLICKR, f"Flickr_8k.{split}Images.txt")
    with open(path) as f:
        names = [line.strip() for line in f if line.strip()]
    return names[:count] if count else names


def timed(fn, *args, **kwargs):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def save(name: str, results: dict) -> str:
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    return path


def table(rows: list[tuple]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows)


def measure(command: list[str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in MiB) of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"{command[1:4]} failed: {process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024
