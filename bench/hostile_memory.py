"""Peak memory of `altvoice caption` on hostile inputs (zip and tar bombs, /dev/zero, a FIFO, a 16-bit
8000x8000 PNG, a 12 MP photo) against a normal run of a few photos. Target: every case < 2 GB peak RSS.

    .venv/bin/python bench/hostile_memory.py [--cases baseline,zip_bomb,...] [--photos flickr|synthetic]
    .venv/bin/python bench/hostile_memory.py --input X --output OUT [--tts none]   # one run, JSON on stdout

Each case's input is built in a temp folder (by a separate process, so that building a 2 GiB
zip member or a 128 MB 16-bit array never counts in a measurement) and captioned by the real
CLI, `.venv/bin/altvoice caption --input X --output OUT --tts none` (bundled model, default
settings; `baseline_default_voice` leaves --tts unset), one fresh process per case. For each run:

  peak RSS   the CLI process's own ru_maxrss, from os.wait4 on its pid. On Linux a child's
             ru_maxrss includes its parent's peak up to the fork/exec, so this launcher never
             imports numpy, Pillow or TensorFlow (its own peak is recorded as `launcher_peak_mib`);
             it is the largest of the CLI and any process it waited for (espeak, piper), not a sum;
  tree peak  the sum of VmRSS over the CLI's process tree, sampled every 0.1 s (a cross-check:
             shared pages count once per process);
  outcome    exit code, wall time, each image's manifest status and the error records' kinds.

Normal photos are the first Flickr8k dev images when ../shared is there (read, never copied into
the repository), else drawn ones (`--photos synthetic`). Results: bench/results/hostile_memory.json.
Reads ../shared and is not part of `make test`.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from bench.common import FLICKR, save, split_names, table  # noqa: E402  (json, os, time only)

ALTVOICE = os.path.join(os.path.dirname(sys.executable), "altvoice")  # the venv's console script
TARGET_MIB = 2048
MIB = 1 << 20
CHUNK = 1 << 20  # bytes of zeros written at a time
CASES = ("baseline", "baseline_default_voice", "zip_bomb", "dev_zero_fifo", "tar_bomb", "tar_bomb_last", "png16_8000",
         "jpeg_12mp")


# ---------------------------------------------------------------------------------------------
# Input builders: each makes its case's input under `work` and returns (input path, expectation),
# the expectation mapping each image name to "written" or "refused". numpy and Pillow are imported
# inside the functions so that the launcher stays small.

def synthetic_photo(seed: int, size=(640, 480), quality: int = 90) -> bytes:
    """A photo-like JPEG: smooth colour gradients, soft blobs and sensor-like noise."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.empty((height, width, 3), np.float32)
    for band in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        pixels[..., band] = 128 + 60 * (a * x / width + b * y / height) + 30 * np.sin(c * 6 * x / width + band)
    for _ in range(6):  # soft blobs: "objects"
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.05, 0.25) * width
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None]
        pixels += blob * rng.uniform(-90, 90, 3)
    pixels += rng.normal(0, 6, pixels.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def normal_photos(count: int, kind: str = "synthetic") -> dict[str, bytes]:
    """`count` normal photos by name: Flickr8k dev photos (kind 'flickr') or drawn ones."""
    if kind == "flickr":
        names = split_names("dev", count)
        return {name: open(os.path.join(FLICKR, "Images", name), "rb").read() for name in names}
    return {f"photo_{i + 1}.jpg": synthetic_photo(i) for i in range(count)}


def _folder(work: str, name: str, photos: dict[str, bytes]) -> str:
    folder = os.path.join(work, name)
    os.makedirs(folder, exist_ok=True)
    for photo, data in photos.items():
        with open(os.path.join(folder, photo), "wb") as f:
            f.write(data)
    return folder


def build_baseline(work: str, photos: dict[str, bytes]) -> tuple[str, dict]:
    """A folder of the normal photos."""
    return _folder(work, "baseline", photos), dict.fromkeys(photos, "written")


def build_zip_bomb(work: str, photos: dict[str, bytes], bomb_bytes: int = 2 << 30) -> tuple[str, dict]:
    """A zip of the photos with `bomb.bmp` between them: `bomb_bytes` of zeros, deflated (2 GiB: ~2 MB),
    written streaming in 1 MiB chunks."""
    path = os.path.join(work, "photos.zip")
    names = list(photos)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names[:1]:
            archive.writestr(name, photos[name])
        with archive.open("bomb.bmp", "w", force_zip64=True) as member:
            zeros = bytes(CHUNK)
            for start in range(0, bomb_bytes, CHUNK):
                member.write(zeros if bomb_bytes - start >= CHUNK else zeros[: bomb_bytes - start])
        for name in names[1:]:
            archive.writestr(name, photos[name])
    return path, {**dict.fromkeys(photos, "written"), "bomb.bmp": "refused"}


def build_dev_zero_fifo(work: str, photos: dict[str, bytes]) -> tuple[str, dict]:
    """A folder of the photos with `zero.jpg` -> /dev/zero and a FIFO `pipe.jpg` (no writer)."""
    folder = _folder(work, "devzero", photos)
    os.symlink("/dev/zero", os.path.join(folder, "zero.jpg"))
    os.mkfifo(os.path.join(folder, "pipe.jpg"))
    return folder, {**dict.fromkeys(photos, "written"), "zero.jpg": "refused", "pipe.jpg": "refused"}


class _Zeros:
    """A file object of `size` zero bytes, for tarfile.addfile without holding them."""

    def __init__(self, size: int):
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def build_tar_bomb(work: str, photos: dict[str, bytes], bomb_bytes: int = 1 << 30,
                   bomb_at: int = 1) -> tuple[str, dict]:
    """A .tar.gz of the photos with `bomb.bmp` (`bomb_bytes` of zeros; 1 GiB: ~1 MB) as member
    `bomb_at` (0: first; len(photos): last). Streamed: no member is held in memory."""
    import io

    path = os.path.join(work, "photos.tar.gz")
    members = [(name, len(data), lambda d=data: io.BytesIO(d)) for name, data in photos.items()]
    members.insert(bomb_at, ("bomb.bmp", bomb_bytes, lambda: _Zeros(bomb_bytes)))
    with tarfile.open(path, "w:gz") as archive:
        for name, size, reader in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = size, int(time.time()), 0o644
            archive.addfile(info, reader())
    return path, {**dict.fromkeys(photos, "written"), "bomb.bmp": "refused"}


def build_png16(work: str, photos: dict[str, bytes], side: int = 8000) -> tuple[str, dict]:
    """A folder of the photos with `big16.png`: a 16-bit grayscale `side` x `side` PNG (a gradient
    with a few bands; 8000: ~64 MP, at the default pixel limit, a few hundred KB)."""
    import numpy as np
    from PIL import Image

    folder = _folder(work, "png16", photos)
    row = np.linspace(0, 65535, side).astype(np.uint16)
    pixels = np.empty((side, side), np.uint16)
    pixels[:] = row
    for band in range(8):  # horizontal bands of another level, so that the image is not one gradient
        pixels[band * side // 8 : band * side // 8 + side // 32] //= 2
    Image.fromarray(pixels).save(os.path.join(folder, "big16.png"))
    return folder, {**dict.fromkeys(photos, "written"), "big16.png": "written"}


def build_jpeg_12mp(work: str, photos: dict[str, bytes], size=(4000, 3000)) -> tuple[str, dict]:
    """A folder of the photos with `big.jpg`: a 4000x3000 8-bit photo-like JPEG (noise + gradients)."""
    folder = _folder(work, "jpeg12mp", photos)
    with open(os.path.join(folder, "big.jpg"), "wb") as f:
        f.write(synthetic_photo(99, size, quality=92))
    return folder, {**dict.fromkeys(photos, "written"), "big.jpg": "written"}


BUILDERS = {  # case -> (builder, normal photos, --tts; None: the default voice)
    "baseline": (build_baseline, 5, "none"),
    "baseline_default_voice": (build_baseline, 5, None),
    "zip_bomb": (build_zip_bomb, 3, "none"),
    "dev_zero_fifo": (build_dev_zero_fifo, 3, "none"),
    "tar_bomb": (build_tar_bomb, 3, "none"),  # the bomb second of four members
    "tar_bomb_last": (lambda work, photos: build_tar_bomb(work, photos, bomb_at=len(photos)), 3, "none"),
    "png16_8000": (build_png16, 3, "none"),
    "jpeg_12mp": (build_jpeg_12mp, 3, "none"),
}


def build(case: str, work: str, photos: str = "synthetic") -> tuple[str, dict]:
    builder, count, _ = BUILDERS[case]
    return builder(work, normal_photos(count, photos))


def build_in_child(case: str, work: str, photos: str) -> tuple[str, dict, float]:
    """build() in a fresh process (its memory never counts in the launcher's); with its seconds."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--build", case, "--work", work,
                           "--photos", photos], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"building {case} failed: {done.stderr[-2000:]}")
    path, expect = json.loads(done.stdout.strip().splitlines()[-1])
    return path, expect, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# Measuring one run of the CLI.

def _tree_rss_kib(root: int) -> tuple[int, list]:
    """Sum of RSS (KiB) of `root` and its descendants, from /proc; with (pid, KiB, command) of each."""
    children, rss = {}, {}
    page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * page_kib
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        if pid in rss:
            found.append((pid, rss[pid]))
        pending += children.get(pid, [])
    members = []
    for pid, kib in found:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:100]
        except OSError:
            command = "?"
        members.append((pid, round(kib / 1024, 1), command))
    return sum(kib for _, kib in found), members


def _read_jsonl(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def measure(input_path: str, output: str, tts: str | None = "none", expect: dict | None = None,
            timeout: float = 1800, extra=()) -> dict:
    """Runs `altvoice caption` once in its own process; its peak RSS, exit code, wall time and outcome."""
    command = [ALTVOICE, "caption", "--input", input_path, "--output", output, *(["--tts", tts] if tts else []), *extra]
    log_path = output.rstrip("/") + ".log"
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        tree_peak, tree_at_peak, timed_out = 0, [], False
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            total, members = _tree_rss_kib(process.pid)
            if total > tree_peak:
                tree_peak, tree_at_peak = total, members
            if time.perf_counter() - start > timeout and not timed_out:
                timed_out = True
                os.killpg(process.pid, 9)  # the CLI's own session: only what this run started
            time.sleep(0.1)
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    manifest = {m["image"]: m["status"] for m in _read_jsonl(os.path.join(output, "manifest.jsonl"))}
    errors = [{k: e.get(k) for k in ("image", "stage", "kind")}
              for e in _read_jsonl(os.path.join(output, "errors.jsonl"))]
    result = {
        "command": " ".join(command), "exit_code": process.returncode, "timed_out": timed_out,
        "wall_s": round(seconds, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "tree_peak_rss_mib_sampled": round(tree_peak / 1024, 1),
        "tree_at_peak": [{"pid": p, "rss_mib": m, "command": c} for p, m, c in tree_at_peak],
        "manifest": manifest, "errors": errors,
    }
    if process.returncode:
        with open(log_path, "rb") as f:
            result["stderr_tail"] = f.read()[-2000:].decode(errors="replace")
    if expect is not None:
        result["expected"] = expect
        result["outcome_ok"] = outcome_ok(result, expect)
    return result


def outcome_ok(result: dict, expect: dict) -> bool:
    """Every image expected written is `written`; every one expected refused has an error record and is not."""
    refused = {e["image"] for e in result["errors"]}
    for name, want in expect.items():
        if want == "written" and result["manifest"].get(name) != "written":
            return False
        if want == "refused" and (name not in refused or result["manifest"].get(name) == "written"):
            return False
    return result["exit_code"] == 0


def describe(result: dict) -> str:
    """One line: how many expected photos were written, and what was refused with which kind."""
    wanted = [n for n, w in result.get("expected", {}).items() if w == "written"]
    written = [n for n in wanted if result["manifest"].get(n) == "written"]
    parts = [f"{len(written)}/{len(wanted)} written"]
    parts += [f"{e['image']}: {e['stage']}/{e['kind']}" for e in result["errors"]]
    missing = [n for n in wanted if n not in written]
    if missing:
        parts.append("NOT written: " + ", ".join(f"{n} ({result['manifest'].get(n, 'no manifest line')})"
                                                 for n in missing))
    return "; ".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--photos", choices=["flickr", "synthetic"], default=None,
                        help="normal photos: Flickr8k dev photos from ../shared (default when there) or drawn ones")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run before it is killed")
    parser.add_argument("--keep", default=None, help="build inputs and outputs in this folder and keep them")
    parser.add_argument("--results", default=None, help="write the results JSON here instead of "
                        "bench/results/hostile_memory.json")
    parser.add_argument("--input", default=None, help="measure one run on this existing input instead (its "
                        "result as JSON on stdout; nothing saved); with --output, --tts, --expect")
    parser.add_argument("--output", default=None, help="with --input: the run's output folder")
    parser.add_argument("--tts", default="none", help="with --input: --tts of the run ('default': unset)")
    parser.add_argument("--expect", default=None, help="with --input: JSON {image: 'written' | 'refused'}")
    parser.add_argument("--build", default=None, help=argparse.SUPPRESS)  # internal: build one case's input
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    photos = args.photos or ("flickr" if os.path.isdir(os.path.join(FLICKR, "Images")) else "synthetic")
    if args.build:
        path, expect = build(args.build, args.work, photos)
        print(json.dumps([path, expect]))
        return
    if args.input:
        if not args.output:
            parser.error("--input needs --output")
        result = measure(args.input, args.output, None if args.tts == "default" else args.tts,
                         json.loads(args.expect) if args.expect else None, args.timeout)
        result["launcher_peak_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(result))
        return
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in BUILDERS]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    work = args.keep or tempfile.mkdtemp(prefix="altvoice-hostile-")
    results = {"photos": photos, "cpus": os.cpu_count(), "target_mib": TARGET_MIB,
               "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "cases": {}}
    try:
        for case in cases:
            case_dir = os.path.join(work, case)
            os.makedirs(case_dir, exist_ok=True)
            path, expect, build_s = build_in_child(case, case_dir, photos)
            size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs
                       if os.path.isfile(os.path.join(d, f)) and not os.path.islink(os.path.join(d, f))) \
                if os.path.isdir(path) else os.path.getsize(path)
            print(f"{case}: input built in {build_s:.1f} s ({size / MIB:.1f} MB on disk), captioning...", flush=True)
            result = measure(path, os.path.join(case_dir, "out"), BUILDERS[case][2], expect, args.timeout)
            result.update({"input_mb_on_disk": round(size / MIB, 2), "build_s": round(build_s, 1)})
            results["cases"][case] = result
            print(f"  peak {result['peak_rss_mib']} MiB, exit {result['exit_code']}, {result['wall_s']} s: "
                  f"{describe(result)}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    base = results["cases"].get("baseline", {}).get("peak_rss_mib")
    rows = [("case", "peak RSS MiB", "/ baseline", "tree peak MiB", "wall s", "exit", "< 2 GB", "outcome")]
    for case, r in results["cases"].items():
        r["ratio_to_baseline"] = round(r["peak_rss_mib"] / base, 3) if base else None
        r["under_target"] = r["peak_rss_mib"] < TARGET_MIB
        rows.append((case, r["peak_rss_mib"], r["ratio_to_baseline"] or "-", r["tree_peak_rss_mib_sampled"],
                     r["wall_s"], r["exit_code"], "yes" if r["under_target"] else "NO",
                     ("ok: " if r["outcome_ok"] else "UNEXPECTED: ") + describe(r)))
    results["launcher_peak_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    results["all_under_target"] = all(r["under_target"] for r in results["cases"].values())
    results["all_outcomes_ok"] = all(r["outcome_ok"] for r in results["cases"].values())
    print(table(rows))
    print(f"launcher's own peak RSS: {results['launcher_peak_mib']} MiB (included in every child's ru_maxrss floor)")
    if args.results:
        with open(args.results, "w") as f:
            json.dump(results, f, indent=2)
        print("results in", args.results)
    else:
        print("results in", save("hostile_memory", results))


if __name__ == "__main__":
    main()
