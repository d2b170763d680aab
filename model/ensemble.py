"""`altvoice ensemble`: several exports of one backbone and vocabulary -> one export that decodes with all.

Each next word is chosen from the decoders' averaged log-probabilities (see `model.decoder.Decoder`):
decoders trained with different seeds make different mistakes, and the ensemble's captions are
better than any one's. The backbone runs once per image; each decoder adds its own small cost.
"""

import numpy as np

from altvoice.console import log
from altvoice.flags import EnsembleOptions, UsageError, parse
from altvoice.model.decoders import architecture, kind_of
from altvoice.model.export import export_captioner, load_captioner



def check_compatible(models: list[str], captioners: list) -> None:
    """UsageError unless all exports share the backbone (and its weights), the vocabulary and the decoder sizes."""
    first = captioners[0]
    for path, other in zip(models[1:], captioners[1:]):
        why = None
        if other.vocabulary != first.vocabulary:
            why = "their vocabularies differ"
        elif {k: v for k, v in other.card["backbone"].items() if k not in ("weights", "tflite_sha256")} != {
                k: v for k, v in first.card["backbone"].items() if k not in ("weights", "tflite_sha256")}:
            why = "their backbones differ"
        elif not all(np.array_equal(a, b) for a, b in zip(other.extractor.get_weights(), first.extractor.get_weights())):
            why = "their backbone weights differ"
        elif kind_of(first.card["decoder"]) != "merge" or kind_of(other.card["decoder"]) != "merge":
            why = "an ensemble is of merge decoders (a transformer export decodes alone)"
        elif architecture(other.card["decoder"]) != architecture(first.card["decoder"]):
            why = "their decoder sizes differ"
        if why:
            raise UsageError(f"--models {models[0]} and {path} can't form an ensemble: {why}; train the members "
                             "on one preprocess output with one --units (change --seed between them)")


def run(argv=None) -> dict:
    """Writes the ensemble export; returns its model card."""
    args = parse(EnsembleOptions, argv, "altvoice ensemble")
    if len(args.models) < 2:
        raise UsageError("--models needs two or more exports")
    captioners = [load_captioner(m, keras_backbone=True) for m in args.models]  # their backbones are compared
    check_compatible(args.models, captioners)
    first = captioners[0].card
    members = [{"model": m, "training": c.card.get("training"), "metrics": c.card.get("metrics", {})}
               for m, c in zip(args.models, captioners)]
    card = {k: v for k, v in first.items() if k not in ("format", "decoder", "decoders", "vocabulary", "metrics")}
    card.update(ensemble=members, metrics={})
    decoders = [d for c in captioners for d in c.decoder_models]
    card = export_captioner(args.output, decoders, captioners[0].extractor, captioners[0].vocabulary, card,
                            float16=args.float16, image_prior=captioners[0].image_prior)
    log.info("wrote an ensemble of %d decoders to %s", len(decoders), args.output)
    return card
