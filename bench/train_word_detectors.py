"""Fits an export's word detectors (model.detectors) on Flickr8k and adds them to it (run by release_model.sh).

    .venv/bin/python bench/train_word_detectors.py --model DIR [--wordnet /usr/share/wordnet] [--l2 100]

Words: `people` (a photo shows people when at least 3 of its 5 reference captions name a person), and
every caption noun (more often a noun than anything else in WordNet's SemCor counts, Debian
wordnet-base; -ing forms only when SemCor tags them often as nouns) that does not name a living being and that at least 2 reference captions use for at
least --min-images training photos. A detector is kept when its ROC AUC on the dev split reaches
--min-auc. Features are the export's own backbone features (flip-averaged when the export is).
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import FLICKR, split_names  # noqa: E402
from bench.make_object_words import read_tag_counts  # noqa: E402
from altvoice.model.detectors import DETECTORS_FILE, PEOPLE, WordDetectors  # noqa: E402
from altvoice.model.export import pooled  # noqa: E402
from altvoice.model.grounding import plurals  # noqa: E402

PEOPLE_REFERENCES, WORD_REFERENCES = 3, 2  # of the 5 reference captions
LIVING = {"person", "dog", "cat", "horse", "bird", "animal"}
GERUND_NOUN_TAGS = 20  # an -ing word is a noun ("building", "painting") only with this many noun tags


def references() -> dict[str, list[set[str]]]:
    found = {}
    with open(os.path.join(FLICKR, "Flickr8k.token.txt"), encoding="utf-8") as f:
        for line in f:
            key, _, caption = line.rstrip("\n").partition("\t")
            found.setdefault(key.rsplit("#", 1)[0], []).append(set(caption.lower().split()))
    return found


def labels(refs: dict, names: list[str], words: list[str], person: set[str]) -> dict[str, np.ndarray]:
    """{word: 0/1 per image}: people when PEOPLE_REFERENCES captions name a person, a word when
    WORD_REFERENCES use it (or its plural)."""
    found = {PEOPLE: np.array([sum(bool(r & person) for r in refs[n]) >= PEOPLE_REFERENCES for n in names])}
    for word in words:
        forms = set(plurals(word))
        found[word] = np.array([sum(bool(r & forms) for r in refs[n]) >= WORD_REFERENCES for n in names])
    return found


def candidate_words(refs: dict, names: list[str], vocabulary: list[str], kinds_of: dict, tags: dict,
                    min_images: int) -> list[str]:
    """Singular caption nouns, not living beings, used often enough to learn."""
    vocabulary = set(vocabulary)
    words = []
    for word in sorted(vocabulary):
        counts = tags.get(word)
        if (not word.isalpha() or len(word) < 3 or word in kinds_of and kinds_of[word] & LIVING
                or word.endswith("ing") and counts and counts["n"] < GERUND_NOUN_TAGS
                or not counts or counts["n"] < max(counts.values())
                or word.endswith("s") and word[:-1] in vocabulary):
            continue
        words.append(word)
    positives = labels(refs, names, words, set())
    return [w for w in words if positives[w].sum() >= min_images]


def auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """ROC AUC (rank formula, ties averaged)."""
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):
        ties = scores == value
        ranks[ties] = ranks[ties].mean()
    positives = truth.sum()
    negatives = len(truth) - positives
    if not positives or not negatives:
        return float("nan")
    return float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def features(captioner, names: list[str]) -> np.ndarray:
    from altvoice.images import decode_image

    batches = []
    for start in range(0, len(names), 64):
        pixels = [decode_image(open(os.path.join(FLICKR, "Images", n), "rb").read(), captioner.image_size)
                  for n in names[start : start + 64]]
        batches.append(pooled(captioner.extractor.predict_on_batch(np.stack(pixels))))  # a grid's mean
    return np.concatenate(batches)


def train(train_features, dev_features, refs, train_names, dev_names, words, person, l2, min_auc):
    """(detectors kept, {word: dev AUC} of every candidate)."""
    detectors = WordDetectors.fit(train_features, labels(refs, train_names, words, person), l2)
    truth = labels(refs, dev_names, words, person)
    scores = np.array([[row[w] for w in detectors.words] for row in detectors(dev_features)])
    aucs = {w: round(auc(scores[:, i], truth[w]), 3) for i, w in enumerate(detectors.words)}
    keep = [i for i, w in enumerate(detectors.words) if aucs[w] >= min_auc or w == PEOPLE]
    return WordDetectors([detectors.words[i] for i in keep], detectors.weights[keep], detectors.biases[keep]), aucs


def main(argv=None) -> dict:
    from altvoice.model.export import load_captioner, read_card, write_card

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="export with an object classifier (grounding)")
    parser.add_argument("--wordnet", default="/usr/share/wordnet", help="WordNet 3.0 (Debian wordnet-base)")
    parser.add_argument("--l2", type=float, default=100.0)
    parser.add_argument("--min-images", type=int, default=60)
    parser.add_argument("--min-auc", type=float, default=0.8)
    args = parser.parse_args(argv)
    captioner = load_captioner(args.model, keras_backbone=True)
    if captioner.grounder is None:
        raise SystemExit(f"{args.model} has no object classifier: add one first (bench/release_card.py)")
    kinds_of = captioner.grounder.kinds_of
    person = {w for w, kinds in kinds_of.items() if kinds == {"person"}}
    refs, train_names, dev_names = references(), split_names("train"), split_names("dev")
    words = candidate_words(refs, train_names, captioner.vocabulary, kinds_of, read_tag_counts(args.wordnet),
                            args.min_images)
    detectors, aucs = train(features(captioner, train_names), features(captioner, dev_names), refs,
                            train_names, dev_names, words, person, args.l2, args.min_auc)
    detectors.save(os.path.join(args.model, DETECTORS_FILE))
    card = read_card(args.model)
    kept = {w: aucs[w] for w in detectors.words}
    card["grounding"]["word_detectors"] = {
        "file": DETECTORS_FILE, "l2": args.l2, "words": len(kept), "dev_auc": kept,
        "dropped_below_auc": {w: a for w, a in aucs.items() if w not in kept}, "min_auc": args.min_auc,
        "data": (f"Flickr8k train split ({len(train_names)} images): people when {PEOPLE_REFERENCES} of 5 "
                 f"reference captions name a person, a word when {WORD_REFERENCES} use it; AUC on the dev split"),
    }
    write_card(args.model, card)
    print(json.dumps({k: v for k, v in card["grounding"]["word_detectors"].items() if k != "dev_auc"}, indent=2))
    return card


if __name__ == "__main__":
    main()
