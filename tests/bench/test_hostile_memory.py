"""bench/hostile_memory.py's input builders, and one hostile case end to end: the real `altvoice caption`
(bundled model, --tts none) on photos beside a link to /dev/zero and a FIFO, its peak memory measured
by the bench's small launcher process (never by pytest's own, whose peak a child's ru_maxrss includes)."""
import json
import os
import subprocess
import sys
import tarfile
import zipfile

from bench.hostile_memory import (TARGET_MIB, build_dev_zero_fifo, build_tar_bomb, build_zip_bomb,
                                  normal_photos)

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "hostile_memory.py")


def test_bomb_builders_stream_zeros_into_small_archives(tmp_path):
    photos = normal_photos(2)
    path, expect = build_zip_bomb(str(tmp_path), photos, bomb_bytes=64 << 20)
    with zipfile.ZipFile(path) as archive:
        sizes = {m.filename: m.file_size for m in archive.infolist()}
    assert sizes == {"photo_1.jpg": len(photos["photo_1.jpg"]), "bomb.bmp": 64 << 20,
                     "photo_2.jpg": len(photos["photo_2.jpg"])}
    assert os.path.getsize(path) < 1 << 20 and expect["bomb.bmp"] == "refused"
    path, expect = build_tar_bomb(str(tmp_path), photos, bomb_bytes=16 << 20)
    with tarfile.open(path) as archive:
        members = [(m.name, m.size) for m in archive]
    assert members == [("photo_1.jpg", len(photos["photo_1.jpg"])), ("bomb.bmp", 16 << 20),
                       ("photo_2.jpg", len(photos["photo_2.jpg"]))]
    assert expect == {"photo_1.jpg": "written", "photo_2.jpg": "written", "bomb.bmp": "refused"}


def test_dev_zero_and_fifo_are_refused_and_memory_stays_under_the_target(tmp_path):
    folder, expect = build_dev_zero_fifo(str(tmp_path), normal_photos(3))
    done = subprocess.run([sys.executable, BENCH, "--input", folder, "--output", str(tmp_path / "out"),
                           "--expect", json.dumps(expect), "--timeout", "600"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["exit_code"] == 0, result.get("stderr_tail")
    assert result["manifest"] == {f"photo_{i}.jpg": "written" for i in (1, 2, 3)}
    assert sorted((e["image"], e["kind"]) for e in result["errors"]) == [("pipe.jpg", "not_a_file"),
                                                                       ("zero.jpg", "not_a_file")]
    assert result["outcome_ok"]
    # The job is forked from the bench launcher, a small process, so its peak is its own (a child of a big
    # process such as pytest would count that parent's pages as its own peak: Linux keeps it across exec).
    assert 0 < result["peak_rss_mib"] < TARGET_MIB
