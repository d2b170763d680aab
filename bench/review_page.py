"""The review page with 1,000 and 50,000 records in headless Chromium: load time, JS heap, filter and search.

    .venv/bin/python bench/review_page.py [--sizes 1000,50000]

Records are made like a caption run's (alt texts are Flickr8k dev captions from ../shared, 27%
flagged for review, 1% failed), with 50 real thumbnails made from ../shared photos and shared by
all records; the page is written by altvoice.review.write_page and opened from the folder
(file://), as a reviewer would. Needs `make setup` (Chromium, chromedriver, selenium).
"""
import argparse
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "..", "tests")]

from bench.common import FLICKR, save, split_names, table  # noqa: E402

THUMBS = 50


def make_output(root: str, count: int) -> float:
    """A caption output's page with `count` records under `root`; returns write_page's seconds."""
    from altvoice.images import thumbnail
    from altvoice.outputs import atomic_write
    from altvoice.review import thumb_name, write_page

    names = split_names("dev", THUMBS)
    thumbs = []
    for name in names:
        with open(os.path.join(FLICKR, "Images", name), "rb") as f:
            jpeg, _, _ = thumbnail(f.read(), 160)
        thumbs.append(thumb_name(name, {"size": len(jpeg)}))
        atomic_write(f"{root}/review/{thumbs[-1]}", jpeg)
    with open(os.path.join(FLICKR, "Flickr8k.token.txt"), encoding="utf-8") as f:
        texts = [line.split("\t", 1)[1].strip() for line in f if "\t" in line][:20000]
    rng = random.Random(0)
    records = []
    for i in range(count):
        text = texts[i % len(texts)]
        record = {"image": f"folder-{i // 1000:03d}/photo-{i:06d}.jpg", "status": "failed" if i % 100 == 7 else "written",
                  "caption": text.lower().rstrip(" ."), "alt_text": text[0].upper() + text[1:].rstrip(" .") + ".",
                  "score": round(rng.uniform(-1.5, 0), 4), "confidence": round(rng.random(), 3),
                  "needs_review": rng.random() < 0.27, "model_id": "altvoice-flickr8k@b8d13c781838",
                  "voice": "piper:en_US-joe-medium:length=1:noise=0.667:noise_w=0.8:wav", "grounding": "grounded",
                  "audio": f"../folder-{i // 1000:03d}/photo-{i:06d}.jpg.wav", "thumb": thumbs[i % THUMBS]}
        if record["status"] == "failed":
            record = {k: record[k] for k in ("image", "status")} | {"alt_text": "", "reasons": ["decode: corrupt image"]}
        records.append(record)
    errors = [{"image": r["image"], "stage": "decode", "kind": "corrupt_image", "reason": "cannot decode image"}
              for r in records if r["status"] == "failed"]
    start = time.perf_counter()
    write_page(root, records, {"id": "bench", "counts": {"written": count - len(errors), "failed": len(errors)},
                               "errors": errors, "errors_total": len(errors), "created": "bench"})
    return time.perf_counter() - start


def measure(driver, root: str) -> dict:
    """Load to first render (ms), JS heap (MiB), and the time of a filter change, a search, a page turn (ms)."""
    driver.execute_cdp_cmd("Performance.enable", {})
    driver.get(f"file://{root}/review/index.html")
    deadline = time.monotonic() + 120
    while not driver.execute_script("return performance.getEntriesByName('altvoice-ready').length"):
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not start")
        time.sleep(0.05)
    ready = driver.execute_script("return performance.getEntriesByName('altvoice-ready')[0].startTime")
    metrics = {m["name"]: m["value"] for m in driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    timed = ("var t = performance.now(); %s; return performance.now() - t;")
    return {
        "load_to_first_render_ms": round(ready),
        "js_heap_used_mib": round(metrics["JSHeapUsedSize"] / 2**20, 1),
        "filter_all_ms": round(driver.execute_script(timed % "document.querySelector('input[value=all]').click()"), 1),
        "search_ms": round(driver.execute_script(timed % (
            "var s = document.getElementById('search'); s.value = 'dog'; s.dispatchEvent(new Event('input'))")), 1),
        "next_page_ms": round(driver.execute_script(timed % "document.querySelector('#pager-top button:last-child').click()"), 1),
        "shown_after_search": driver.execute_script("return altvoiceReview.shownImages().length"),
        "dom_nodes": driver.execute_script("return document.getElementsByTagName('*').length"),
    }


def main():
    from browser import chrome, missing

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,50000")
    args = parser.parse_args()
    if missing():
        sys.exit(f"needs {', '.join(missing())}: run make setup")
    results = {"cpus": os.cpu_count()}
    work = tempfile.mkdtemp(prefix="review-bench-")
    try:
        with chrome(work) as driver:
            for size in [int(s) for s in args.sizes.split(",")]:
                root = os.path.join(work, f"out_{size}")
                seconds = make_output(root, size)
                data = sum(os.path.getsize(os.path.join(root, "review", "data", n))
                           for n in os.listdir(os.path.join(root, "review", "data")))
                results[str(size)] = {"write_page_s": round(seconds, 2), "data_mib": round(data / 2**20, 2),
                                      **measure(driver, root)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [("records", *results[next(k for k in results if k != "cpus")].keys())]
    rows += [(k, *v.values()) for k, v in results.items() if k != "cpus"]
    print(table(rows))
    print("results in", save("review_page", results))


if __name__ == "__main__":
    main()
