"""Preprocess before and after features were stored once per image: disk size and speed, side by side.

    .venv/bin/python bench/feature_storage.py --images 1000 [--before b01d7e0]

Runs `altvoice preprocess` on the first N Flickr8k dev images (their captions; 80% as train, the rest as dev)
with MobileNetV2@160, three ways, one after the other in one run:
  before        the code at --before (a git worktree): features float32, repeated in every caption record
  pooled        this code, --features pooled: float16 once per image
  grid          this code, --features grid: the 5x5x1280 grid, float16 once per image
and reports, for each, the bytes of tfrecords/ + features/, wall and CPU seconds, and peak memory.
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, ROOT)

from bench.common import FLICKR, GLOVE, MOBILENET_WEIGHTS, measure, save, split_names, table  # noqa: E402

FOLDERS = ("model", "pipelines", "transforms")  # setup.py maps altvoice.<folder> to <folder>/


def package_of(ref: str, work: str) -> str:
    """A directory to put on PYTHONPATH whose `altvoice` package is the code at git `ref`."""
    tree = os.path.join(work, "tree")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", tree, ref], check=True, capture_output=True)
    package = os.path.join(work, "pythonpath", "altvoice")
    os.makedirs(package)
    for name in os.listdir(os.path.join(tree, "altvoice")):
        os.symlink(os.path.join(tree, "altvoice", name), os.path.join(package, name))
    for folder in FOLDERS:
        os.symlink(os.path.join(tree, folder), os.path.join(package, folder))
    return os.path.dirname(package)


def inputs(count: int, work: str) -> list[str]:
    names = split_names("dev", count)
    wanted = set(names)
    with open(os.path.join(FLICKR, "Flickr8k.token.txt")) as f:
        lines = [line for line in f if line.split("#")[0] in wanted]
    paths = {}
    for name, content in (("captions.txt", "".join(lines)), ("train.txt", "\n".join(names[: count * 4 // 5])),
                          ("dev.txt", "\n".join(names[count * 4 // 5 :]))):
        paths[name] = os.path.join(work, name)
        with open(paths[name], "w") as f:
            f.write(content)
    return ["--captions", paths["captions.txt"], "--images", os.path.join(FLICKR, "Images"),
            "--train-split", paths["train.txt"], "--dev-split", paths["dev.txt"], "--backbone", "mobilenet_v2",
            "--image-size", "160", "--backbone-weights", MOBILENET_WEIGHTS, "--min-word-count", "5",
            "--glove", GLOVE]


def disk_bytes(output: str) -> int:
    total = 0
    for folder in ("tfrecords", "features"):
        for root, _, files in os.walk(os.path.join(output, folder)):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--before", default="b01d7e0", help="the commit before issue 16")
    args = parser.parse_args()
    # -P: the working directory (this checkout) must not shadow the "before" package on PYTHONPATH
    cli = [sys.executable, "-P", "-c", "import sys; from altvoice.cli import main; sys.exit(main(sys.argv[1:]))",
           "preprocess"]
    results = {"images": args.images}
    with tempfile.TemporaryDirectory(prefix="altvoice-storage-") as work:
        flags = inputs(args.images, work)
        before = package_of(args.before, work)
        original = os.environ.get("PYTHONPATH", "")
        try:
            runs = (("before", before, []), ("pooled", None, ["--features", "pooled"]),
                    ("grid", None, ["--features", "grid"]))
            for name, path, extra in runs:
                output = os.path.join(work, name)
                os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (path, original) if p)  # measure's child
                wall, cpu, rss = measure([*cli, *flags, *extra, "--output", output])
                if os.path.isdir(os.path.join(output, "features")) == (name == "before"):
                    raise SystemExit(f"the {name} run did not run the code it should (features/ folder)")
                results[name] = {"bytes": disk_bytes(output), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                                 "peak_rss_mib": rss, "images_per_s": round(args.images / wall, 1)}
        finally:
            os.environ["PYTHONPATH"] = original
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", os.path.join(work, "tree")],
                           check=False, capture_output=True)
    base = results["before"]
    for name in ("pooled", "grid"):
        results[name]["bytes_vs_before"] = round(results[name]["bytes"] / base["bytes"], 3)
        results[name]["wall_vs_before"] = round(results[name]["wall_s"] / base["wall_s"], 3)
    rows = [("run", "MB", "vs before", "wall s", "CPU s", "images/s", "peak MiB")]
    for name in ("before", "pooled", "grid"):
        r = results[name]
        rows.append((name, round(r["bytes"] / 1e6, 1), r.get("bytes_vs_before", 1.0), r["wall_s"], r["cpu_s"],
                     r["images_per_s"], r["peak_rss_mib"]))
    print(table(rows))
    print(save("feature_storage", results))


if __name__ == "__main__":
    main()
