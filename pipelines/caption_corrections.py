"""`altvoice caption --corrections FILE`: reviewers' corrections written into the records at launch.

Each usable line becomes the image's `correction` block (altvoice.corrections), marked pending, in
one atomic write of its record; the run then redoes those images, speaking the human alt text
(WriteOutputs keeps a correction across later runs, model upgrades and --force). Lines that name no
captioned image, or can't be used, are error records of the run.
"""
from altvoice.corrections import STAGE, read_corrections
from altvoice.errors import error_record
from altvoice.flags import UsageError
from altvoice.names import printable
from altvoice.outputs import atomic_write, output_paths, read_record


def apply_corrections(root: str, url: str) -> tuple[int, list]:
    """(images corrected, error records) for the corrections file at `url` against the records under
    `root`; a correction a record already holds is not applied again."""
    import json

    try:
        corrections, errors = read_corrections(url)
    except OSError as err:
        raise UsageError(f"--corrections {url}: cannot be read ({err})") from None
    applied = 0
    for image, correction in corrections.items():
        where = output_paths(root, image, None)["json"]
        record = read_record(where)
        if not record or "caption" not in record:
            errors.append(error_record(image, STAGE, "unknown_image", f"corrections line {correction.line}: no "
                                       f"caption record for {printable(image)} in {root}: caption it first"))
            continue
        if correction.already_in(record):
            continue
        record["correction"] = correction.applied_to(record)
        try:
            atomic_write(where, json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"))
        except OSError as err:
            errors.append(error_record(image, STAGE, "write_failed", f"corrections line {correction.line}: {err}"))
            continue
        applied += 1
    return applied, errors
