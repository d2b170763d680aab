"""`altvoice evaluate`: caption a split's images with an exported model and score them against the references.

Writes the metrics (see model.metrics) to --output and {image: caption} beside it as <name>.captions.json.
Images that are missing or can't be decoded are listed in the metrics file and left out of the scores.
"""
import json
import posixpath

import fsspec
from tqdm import tqdm

from altvoice.caption_files import parse_lines
from altvoice.console import log
from altvoice.flags import EvaluateOptions, UsageError, check_specificity, parse
from altvoice.images import ImageError, decode_sizes
from altvoice.model.classifier import IMAGE_SIZE as OBJECT_SIZE
from altvoice.model.export import load_captioner, read_card, write_card
from altvoice.model.metrics import caption_metrics
from altvoice.sources import Refused, list_sources, read_task



def read_lines(path: str, flag: str) -> list[str]:
    try:
        with fsspec.open(path, "r", encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError as err:
        raise UsageError(f"{flag} {path}: can't read it ({err})") from None


def read_references(path: str, wanted: set[str]) -> dict[str, list[str]]:
    """{image: [captions]} for the wanted images; malformed lines are skipped."""
    references = {}
    for _, _, parsed in parse_lines(path, read_lines(path, "--captions")):
        if not isinstance(parsed, ValueError) and parsed[0] in wanted and parsed[1]:
            references.setdefault(parsed[0], []).append(parsed[1])
    return references


def read_images(url: str, wanted: set[str]):
    """(name, bytes or error) for each wanted image found under `url`, the first file of a name only."""
    try:
        tasks = list(list_sources(url))
    except Exception as err:  # fsspec and archive readers raise many kinds; all mean "can't list"
        raise UsageError(f"--images {url}: can't list it ({err})") from None
    seen = set()
    for task in (t for t in tasks if not isinstance(t, Refused)):
        if task.kind != "tar":
            task = task._replace(entries=tuple(e for e in task.entries if posixpath.basename(e.name) in wanted))
        for entry, data in read_task(task):
            name = posixpath.basename(entry.name)
            if name in wanted and name not in seen:
                seen.add(name)
                yield name, data


def caption_split(captioner, images: str, names: set[str], batch_size: int, **decoding) -> tuple[dict, dict]:
    """({image: model.grounding.Grounded}, {image: why it failed}), with a progress bar; captions are
    grounded when the captioner has an object classifier."""
    captions, failed, batch = {}, {}, []
    sizes = (captioner.image_size, OBJECT_SIZE) if captioner.classifier else (captioner.image_size,)

    def flush():
        objects = [pixels[1] for _, pixels in batch] if captioner.classifier else None
        found = captioner.describe_images([pixels[0] for _, pixels in batch], objects, **decoding)
        for (name, _), result in zip(batch, found):
            captions[name] = result
        bar.update(len(batch))
        batch.clear()

    with tqdm(total=len(names), desc="captioning", unit="image") as bar:
        for name, data in read_images(images, names):
            try:
                if isinstance(data, Exception):
                    raise data
                batch.append((name, decode_sizes(data, sizes)))
            except (ImageError, OSError, ValueError) as err:
                failed[name] = str(err)
                bar.update()
            if len(batch) == batch_size:
                flush()
        flush()
    return captions, failed


def run(argv=None) -> dict:
    """Captions the split, writes metrics and captions; returns the metrics report."""
    args = parse(EvaluateOptions, argv, "altvoice evaluate")
    override = None if args.flip_average is None else args.flip_average == "on"
    captioner = load_captioner(args.model, args.batch_size, override, grounding=args.grounding == "on")
    flip = captioner.card["backbone"].get("flip_average", False) if override is None else override
    names = {posixpath.basename(n.strip()) for n in read_lines(args.split_file, "--split-file") if n.strip()}
    references = read_references(args.captions, names)
    if not references:
        raise UsageError(f"--captions {args.captions} has no caption for any image of --split-file {args.split_file}")
    decoding = {"beam_width": args.beam_width or captioner.card["decoding"]["beam_width"],
                "alpha": captioner.card["decoding"]["alpha"] if args.alpha is None else args.alpha,
                "specificity": (captioner.card["decoding"].get("specificity", 0.0) if args.specificity is None
                                else args.specificity)}
    check_specificity(args.specificity, decoding["beam_width"], captioner.image_prior is not None, args.model)
    captions, failed = caption_split(captioner, args.images, set(references), args.batch_size, **decoding)
    if not captions:
        raise UsageError(f"--images {args.images}: none of the split's {len(references)} images could be captioned")
    missing = sorted(set(references) - captions.keys() - failed.keys())
    if missing or failed:
        log.warning("%d images not found, %d not decodable: scored on the other %d",
                        len(missing), len(failed), len(captions))
    paths = [found.grounding for found in captions.values()]
    report = {
        "metrics": caption_metrics({n: found.caption for n, found in captions.items()}, references),
        "images": {"split": len(names), "with_references": len(references), "captioned": len(captions),
                   "not_found": missing, "failed": failed},
        "decoding": {**decoding, "flip_average": flip, "grounding": bool(captioner.classifier)},
        "grounding": {path: paths.count(path) for path in sorted(set(paths))},
        "needs_review": sum(bool(found.needs_review) for found in captions.values()),
        "distinct_captions": len({found.caption for found in captions.values()}),
        "model": args.model, "split_file": args.split_file,
        "captions": args.captions,
    }
    stem = args.output[: -len(".json")] if args.output.endswith(".json") else args.output
    with fsspec.open(args.output, "w") as f:
        json.dump(report, f, indent=2)
    with fsspec.open(f"{stem}.captions.json", "w") as f:
        json.dump({n: found.caption for n, found in sorted(captions.items())}, f, indent=2)
    if args.update_model_card:
        card = read_card(args.model)
        split = posixpath.basename(args.split_file) + (" grounded" if captioner.classifier else "")
        card.setdefault("metrics", {})[split] = {**report["metrics"], **report["decoding"], "images": len(captions),
                                                 "grounding_paths": report["grounding"],
                                                 "distinct_captions": report["distinct_captions"]}
        write_card(args.model, card)
    log.info("metrics: %s", json.dumps(report["metrics"]))
    return report
