"""Breadth: do the captions name what is in general photographs, and only that?

    .venv/bin/python bench/breadth.py [--images ../shared/data/general-dev] [--model DIR] [--grounding on|off]

Runs `altvoice caption` (no speech) over a labelled folder (images/ + labels.jsonl: `main`, the
subject's plain nouns; `absent_common`, common caption words clearly not in the photo; `people`)
and scores each record's alt text:

  main-subject recall    share of photos whose text names one of `main` (plural forms included,
                         multi-word nouns such as "hot dog" matched as phrases)
  hallucination rate     share of photos whose text names a word of `absent_common` (not inside a
                         multi-word main noun: "hot dog" does not name a dog)
  people hallucination   share of people-free photos whose text names a person
  flagged                share of needs_review records, and how many of the flagged and of the
                         unflagged captions are wrong (miss the subject or hallucinate)
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from bench.common import SHARED, save, table  # noqa: E402
from altvoice.model.classifier import read_living_words  # noqa: E402
from altvoice.model.grounding import plurals  # noqa: E402

PERSON_WORDS = sorted(w for w, kind in read_living_words(os.path.join(HERE, "..", "model", "pretrained", "living_words.tsv")).items() if kind == "person")


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def names(text: str, phrases) -> bool:
    """True when `text` names one of the phrases, a phrase's last word also in its plural form."""
    padded = f" {' '.join(tokens(text))} "
    for phrase in phrases:
        *head, last = tokens(phrase) or [""]
        if any(f" {' '.join([*head, form])} " in padded for form in plurals(last)):
            return True
    return False


def without(text: str, phrases) -> str:
    """`text` with the multi-word phrases (and their plurals) taken out: "dog" is not named by "hot dog"."""
    padded = f" {' '.join(tokens(text))} "
    for phrase in phrases:
        *head, last = tokens(phrase) or [""]
        for form in plurals(last) if head else []:
            padded = padded.replace(f" {' '.join([*head, form])} ", " ")
    return padded


def score(records: dict, labels: list[dict]) -> dict:
    """The breadth figures of {image: record} against the labels."""
    rows = []
    for label in labels:
        record = records.get(label["image"])
        text = record["alt_text"] if record else ""
        found = names(text, label["main"])
        hallucinated = names(without(text, label["main"]), label["absent_common"])
        person = not label["people"] and names(text, PERSON_WORDS)
        rows.append({"image": label["image"], "alt_text": text, "main": found, "hallucinated": hallucinated,
                     "person": person, "wrong": not found or hallucinated or person,
                     "needs_review": bool(record and record.get("needs_review")),
                     "confidence": record and record.get("confidence"),
                     "grounding": record and record.get("grounding")})
    people_free = [r for r in rows if not next(x for x in labels if x["image"] == r["image"])["people"]]
    flagged = [r for r in rows if r["needs_review"]]
    unflagged = [r for r in rows if not r["needs_review"]]
    return {
        "photos": len(rows),
        "main_subject_recall": _share(rows, "main"),
        "hallucination_rate": _share(rows, "hallucinated"),
        "people_hallucination": _share(people_free, "person"),
        "people_free_photos": len(people_free),
        "flagged": len(flagged),
        "wrong_when_flagged": _share(flagged, "wrong"),
        "wrong_when_unflagged": _share(unflagged, "wrong"),
        "rows": rows,
    }


def _share(rows: list[dict], key: str) -> float | None:
    return round(sum(bool(r[key]) for r in rows) / len(rows), 3) if rows else None


def caption_folder(folder: str, output: str, model: str | None, grounding: str) -> dict:
    """Runs the caption job on the folder; {image: record}."""
    command = [sys.executable, "-m", "altvoice.cli", "caption", "--input", folder, "--output", output,
               "--tts", "none", "--grounding", grounding, *(["--model", model] if model else [])]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = {}
    for name in os.listdir(folder):
        path = os.path.join(output, f"{name}.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                records[name] = json.load(f)
    return records


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default=os.path.join(SHARED, "data", "general-dev"),
                        help="labelled folder: images/ and labels.jsonl")
    parser.add_argument("--model", default=None, help="exported captioner (default: the bundled one)")
    parser.add_argument("--grounding", default="on", choices=["on", "off"])
    parser.add_argument("--name", default=None, help="results file name (bench/results/<name>.json)")
    args = parser.parse_args(argv)
    with open(os.path.join(args.images, "labels.jsonl"), encoding="utf-8") as f:
        labels = [json.loads(line) for line in f if line.strip()]
    with tempfile.TemporaryDirectory(prefix="altvoice-breadth-") as output:
        records = caption_folder(os.path.join(args.images, "images"), output, args.model, args.grounding)
    result = {"images": os.path.basename(os.path.normpath(args.images)), "grounding": args.grounding,
              **score(records, labels)}
    for row in result["rows"]:
        marks = [m for m, on in (("MISS", not row["main"]), ("HALLUC", row["hallucinated"]),
                                 ("PERSON", row["person"]), ("review", row["needs_review"])) if on]
        print(f"{row['image']:24} {row['grounding'] or '-':12} {row['confidence'] or '-':>5}  "
              f"{row['alt_text']}  {' '.join(marks)}")
    keys = ("main_subject_recall", "hallucination_rate", "people_hallucination", "flagged",
            "wrong_when_flagged", "wrong_when_unflagged")
    print(table([("figure", "value"), *((k, result[k]) for k in keys)]))
    save(args.name or f"breadth_{result['images']}_grounding_{args.grounding}", result)
    return result


if __name__ == "__main__":
    main()
