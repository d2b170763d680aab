"""`altvoice demo`: captions and speaks real photographs that ship inside scikit-image.

Nothing is downloaded: the photos come from the scikit-image wheel, the model is the one bundled
with altvoice, the voice is the best offline one installed. Writes to ./demo-output and prints
a table of what it wrote.
"""
import argparse
import json
import os
import shutil
import time
import wave

from altvoice import flags

# scikit-image's sample photographs (public domain or freely licensed, see skimage/data/README.txt)
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "horse.png",
          "camera.png")


def copy_photos(folder: str) -> list[str]:
    """Copies the sample photos out of the installed scikit-image package into `folder`."""
    import skimage

    source = os.path.join(os.path.dirname(skimage.__file__), "data")
    os.makedirs(folder, exist_ok=True)
    for name in PHOTOS:
        shutil.copyfile(os.path.join(source, name), os.path.join(folder, name))
    return list(PHOTOS)


def audio_seconds(path: str) -> float | None:
    """Duration of a WAV file, None for other formats or no file."""
    try:
        with wave.open(path) as audio:
            return audio.getnframes() / audio.getframerate()
    except (OSError, wave.Error, EOFError):
        return None


def results_table(output: str, photos: list[str]) -> str:
    rows = [("image", "caption", "audio file", "seconds")]
    for name in photos:
        with open(os.path.join(output, f"{name}.json"), encoding="utf-8") as f:
            record = json.load(f)
        audio = record.get("audio")
        seconds = audio_seconds(os.path.join(output, audio)) if audio else None
        rows.append((name, record["alt_text"], audio or "-", f"{seconds:.1f}" if seconds else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def run(argv=None) -> str:
    parser = argparse.ArgumentParser(prog="altvoice demo")
    flags.demo(parser)
    args = parser.parse_args(argv)
    from altvoice.pipelines import caption

    photos_dir = os.path.join(args.output, "photos")
    photos = copy_photos(photos_dir)
    job_flags = ["--input", photos_dir, "--output", args.output, "--force", "--review"]
    job_flags += ["--model", args.model] if args.model else []
    job_flags += ["--tts", args.tts] if args.tts else []
    start = time.perf_counter()
    caption.run(job_flags)
    table = results_table(args.output, photos)
    print(f"\n{table}\n\n{len(photos)} photos captioned and spoken in {time.perf_counter() - start:.1f} s; "
          f"outputs in {os.path.abspath(args.output)}; check and correct them on the review page, "
          f"{os.path.join(os.path.abspath(args.output), 'review', 'index.html')}")
    return table
