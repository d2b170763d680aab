"""describe-video on a 10-minute synthetic video vs a naive loop, side by side; memory vs video length.

    .venv/bin/python bench/describe_video_throughput.py [--minutes 10] [--naive-seconds 20] [--memory-minutes 2.5,20]

The videos: bench/synthetic_video.py over the first 120 Flickr8k dev photos (../shared), shots of
2-8 s, 640x360 at 25 frames a second, cached in --work. Measured, each in a fresh process:
  job       `altvoice describe-video` with no voice and with the default offline voice: seconds
            of video described per second of wall time, CPU seconds, peak RSS;
  naive     the loop a user could write with altvoice's API: decode every frame, describe each
            one by one (`model.describe([jpeg])`); its rate over the first --naive-seconds of the
            same video, timed after the model is loaded (start-up not counted, in its favour);
  memory    the job's peak RSS (espeak voice) on videos of --memory-minutes (2.5 and 20), at
            --memory-batch-size keyframes a model call (the model's batch memory equal in both).
Results: bench/results/describe_video_speed.json and describe_video_memory.json.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import FLICKR, measure, save, split_names, table  # noqa: E402
from bench.synthetic_video import make_clip, shots  # noqa: E402

PHOTOS = 120

NAIVE = """
import io, sys, time
import av
from PIL import Image
import altvoice

path, seconds = sys.argv[1], float(sys.argv[2])
model = altvoice.load_model()
start, described = time.perf_counter(), 0
with av.open(path) as video:
    for frame in video.decode(video=0):
        if frame.time >= seconds:
            break
        jpeg = io.BytesIO()
        frame.to_image().save(jpeg, "JPEG", quality=90)
        model.describe([jpeg.getvalue()])
        described += 1
print(described, time.perf_counter() - start)
"""


def clip(work: str, minutes: float) -> str:
    """The folder holding the synthetic video of `minutes` (made once, then reused)."""
    folder = os.path.join(work, f"video_{minutes:g}min")
    path = os.path.join(folder, "clip.mp4")
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        photos = [os.path.join(FLICKR, "Images", name) for name in split_names("dev", PHOTOS)]
        make_clip(path + ".part.mp4", shots(photos, minutes * 60))
        os.replace(path + ".part.mp4", path)
    return folder


def run_job(folder: str, output: str, tts: str, extra=()) -> dict:
    shutil.rmtree(output, ignore_errors=True)
    wall, cpu, peak = measure([sys.executable, "-m", "altvoice.cli", "describe-video", "--input", folder,
                               "--output", output, "--tts", tts, *extra])
    with open(os.path.join(output, "clip.mp4.scenes.json")) as f:
        record = json.load(f)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "peak_mib": peak, "video_s": record["duration"],
            "scenes": len(record["scenes"]), "cues": len(record["cues"]),
            "video_s_per_s": round(record["duration"] / wall, 2)}


def run_naive(folder: str, seconds: float) -> dict:
    import subprocess

    done = subprocess.run([sys.executable, "-c", NAIVE, os.path.join(folder, "clip.mp4"), str(seconds)],
                          capture_output=True, text=True, check=True, cwd=os.path.join(HERE, ".."))
    frames, wall = done.stdout.split()[-2:]
    return {"frames": int(frames), "video_s": seconds, "wall_s": round(float(wall), 1),
            "video_s_per_s": round(seconds / float(wall), 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10, help="the speed runs' video; 0 skips them")
    parser.add_argument("--naive-seconds", type=float, default=20)
    parser.add_argument("--memory-minutes", default="2.5,20", help="comma-separated lengths, '' to skip")
    parser.add_argument("--memory-batch-size", default="8", help="keyframes a model call in the memory runs: "
                        "small enough that every length reaches full batches, so only the length differs")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "altvoice-bench-video"))
    args = parser.parse_args()
    if args.minutes:
        folder = clip(args.work, args.minutes)
        results = {"video": f"{args.minutes:g} min, 640x360, 25 fps, H.264 + AAC, Flickr8k dev photos as shots"}
        results["job_no_voice"] = run_job(folder, os.path.join(args.work, "out_none"), "none")
        results["naive_loop"] = run_naive(folder, args.naive_seconds)
        results["job_piper"] = run_job(folder, os.path.join(args.work, "out_piper"), "piper")
        results["speed_ratio_no_voice"] = round(results["job_no_voice"]["video_s_per_s"]
                                                / results["naive_loop"]["video_s_per_s"], 1)
        report("describe_video_speed", results)
    lengths = [float(m) for m in args.memory_minutes.split(",") if m]
    if lengths:
        results = {"batch_size": int(args.memory_batch_size), "tts": "espeak"}
        for minutes in lengths:
            results[f"{minutes:g}min"] = run_job(clip(args.work, minutes), os.path.join(args.work, "out_mem"),
                                                 "espeak", ["--batch-size", args.memory_batch_size])
        if len(lengths) == 2:
            results["peak_memory_ratio"] = round(results[f"{lengths[1]:g}min"]["peak_mib"]
                                                 / results[f"{lengths[0]:g}min"]["peak_mib"], 3)
        report("describe_video_memory", results)


def report(name: str, results: dict) -> None:
    print(table([("measure", "value"), *[(key, json.dumps(value)) for key, value in results.items()]]))
    print("results in", save(name, results))


if __name__ == "__main__":
    main()
