"""Grounded captions: what a caption says must agree with the evidence of what is in the photo.

The evidence (`model.classifier.Evidence`): the ImageNet classifier's classes summed by plain word
and kind, and the word detectors' probabilities (`model.detectors`, `people` among them). Each
caption then takes one path:

    agrees       the classifier is confident of a kind and the caption names it: kept
    unverified   nothing contradicts the caption, nothing confirms it: kept
    constrained  the caption names a living being the evidence rules out (a dog on a cat photo, people
                 where nothing suggests them): re-decoded by lexically constrained beam search with the
                 ruled-out words (and, without people, what people wear) and the words the detectors
                 don't see banned, and, when the evidence is a confident living being, its word forced
                 in (an in-vocabulary hypernym stands in as a slot, filled afterwards: "bird" ->
                 "parrot"), or else, when the people detector is sure of people, a person word
    fallback     the same with a confidently seen object as the evidence (the captioner's sentences
                 are about living subjects), or no fluent re-decoding: "A photo of a parrot."

`confidence` is a logistic function of the caption's score, the evidence's probability and the path
(coefficients fitted on held-out captions by bench/calibrate_confidence.py, stored in the model
card); `needs_review` is confidence below `review_below`.
"""
import math
from typing import NamedTuple

from altvoice.model.detectors import PEOPLE

CONTEXT_KINDS = ("clothing", "scene")  # seen with any subject: never a reason to re-caption
LIVING_KINDS = ("person", "dog", "cat", "horse", "bird", "animal")  # what a caption may wrongly make its subject
CLOSE_UP_KINDS = ("cat", "bird", "animal", "food", "drink")  # subjects that rule out people unless there is a sign
OBJECT_KINDS = ("thing", "vehicle", "structure", "furniture", "plant")  # subjects seen with or without people
PATHS = ("agrees", "unverified", "constrained", "fallback")
FLUENCY_ALPHA = 0.7  # the length normalisation min_constrained_score is stated in
DEFAULTS = {
    "min_evidence": 0.5,  # a kind at least this probable is confident evidence
    "min_word": 0.4,  # the forced word's own probability
    "min_present": 0.05,  # a kind at least this probable may be in the photo
    "person_evidence": 0.15,  # people-related classes (clothing, person) at least this probable allow people
    "min_people": 0.5,  # the people detector's probability that allows people
    "min_people_with_objects": 0.8,  # the same, on photos of confidently seen objects (a kitchen, a train)
    "sure_people": 0.97,  # the people detector this sure: people may be beside any evidence, and are said
    "min_detected": 0.05,  # a detector word less probable than this is not in the photo
    "min_context": 0.1,  # a re-decoded caption may name a detector word only this probable
    "min_constrained_score": -4.0,  # a constrained caption less fluent is replaced by the fallback (see fluency)
    "review_below": 0.5,  # needs_review when confidence is lower
    "sure": 0.6,  # a fallback names a word this probable plainly...
    "perhaps": 0.15,  # ...and one this probable with "perhaps"
    "confidence": {"bias": 0.0, "score": 1.0, "evidence": 1.0,
                   "agrees": 0.0, "unverified": -1.0, "constrained": -0.5, "fallback": 0.5},
}


class Grounded(NamedTuple):
    caption: str
    score: float
    grounding: str  # one of PATHS, or "off"
    objects: list  # the evidence's top classes, for the record
    confidence: float | None
    needs_review: bool | None
    evidence: float | None = None  # the probability of the evidence's most probable kind


class Grounder:
    """Decides, per image, between the captioner's caption, a constrained one and the fallback."""

    def __init__(self, vocabulary: list[str], classes: list, living: dict[str, str], settings: dict | None = None):
        """`classes`: the classifier's (model.classifier.ObjectClass); `living`: {word: living kind}."""
        self.settings = {**DEFAULTS, **(settings or {})}
        self.ids = {word: i for i, word in enumerate(vocabulary)}
        self.kinds_of = {}  # caption word -> the kinds it names
        named = [(word, c.kind) for c in classes for word in c.words] + list(living.items())
        for word, kind in named:
            for form in plurals(word):
                self.kinds_of.setdefault(form, set()).add(kind)
        only = lambda kind: [i for w, i in self.ids.items() if self.kinds_of.get(w) == {kind}]  # noqa: E731
        self.person_ids, self.worn_ids = only("person"), set(only("clothing"))

    def check(self, caption: str, evidence) -> tuple[str, dict | None]:
        """("agrees" | "unverified", None) when the caption may stand, ("fallback", None), or ("constrained",
        plan), the plan for re-decoding: {word, proxy, required ids, banned ids}."""
        s = self.settings
        kind, probability = evidence.kind()
        confident = probability >= s["min_evidence"] and kind not in CONTEXT_KINDS
        allowed = self.allowed_kinds(kind if confident else None, evidence)
        named = [self.kinds_of[w] for w in caption.split() if w in self.kinds_of]
        if not any(self.contradicted(kinds, allowed) for kinds in named):
            return ("agrees" if confident and any(kind in kinds for kinds in named) else "unverified"), None
        best = evidence.best_word(kind, s["min_word"]) if confident and kind in LIVING_KINDS else None
        proxy = best and next((w for w in best[2] if w in self.ids), None)
        worn = set() if "person" in allowed else self.worn_ids
        banned = sorted({i for w, i in self.ids.items() if w in self.kinds_of and self.contradicted(self.kinds_of[w], allowed)}
                        | {self.ids[w] for w in self.unseen(evidence, s["min_detected"]) if w in self.ids} | worn)
        if proxy is not None:
            return "constrained", {"word": best[0], "proxy": proxy, "banned": banned,
                                   "required": [self.ids[f] for f in plurals(proxy) if f in self.ids]}
        if evidence.detected.get(PEOPLE, 0.0) >= s["sure_people"]:  # the people are surely seen: say them
            return "constrained", {"word": None, "proxy": None, "banned": banned, "required": self.person_ids}
        return "fallback", None  # nothing to force: weak evidence, an object (the captioner's sentences are
        # about living subjects) or a word without an in-vocabulary hypernym

    @staticmethod
    def unseen(evidence, below: float) -> set:
        """Caption words (plurals included) whose word detector gives them less than `below`."""
        return {form for word, p in evidence.detected.items() if p < below and word != PEOPLE for form in plurals(word)}

    @staticmethod
    def contradicted(kinds: set, allowed: set) -> bool:
        """A word names a living being of a kind the evidence leaves out (objects are never contradicted:
        one photo holds many, the classifier names one)."""
        return kinds <= set(LIVING_KINDS) and not (kinds & allowed)

    def allowed_kinds(self, kind: str | None, evidence) -> set:
        """Living kinds a caption may name: the confident evidence's kind, any other with a little
        probability (a dog at 0.05 may well be there), and people when there is a sign of them (a person or
        clothing class, or the people detector, surer beside an object) unless the evidence is a close-up
        subject (an animal, food) and the detector is not sure."""
        s = self.settings
        allowed = {k for k, p in evidence.by_kind.items() if p >= s["min_present"]} | ({kind} if kind else set())
        signs = evidence.by_kind.get("person", 0) + evidence.by_kind.get("clothing", 0) >= s["person_evidence"]
        detected = evidence.detected.get(PEOPLE, 1.0) >= s["min_people_with_objects" if kind in OBJECT_KINDS else "min_people"]
        sure = evidence.detected.get(PEOPLE, 0.0) >= s["sure_people"]
        if signs or sure or (detected and kind not in CLOSE_UP_KINDS):
            allowed.add("person")
        return allowed

    def finish(self, caption: str | None, score: float, path: str, plan: dict | None, evidence,
               min_confidence: float | None = None, alpha: float = FLUENCY_ALPHA) -> Grounded:
        """The final caption of a path (slot filled, or the fallback written) with its confidence; a
        caption less confident than `min_confidence` is replaced by the fallback and flagged. `alpha`:
        the length normalisation of `score`."""
        if path == "constrained":
            unseen = self.unseen(evidence, self.settings["min_context"]) & set((caption or "").split())
            if caption is None or fluency(caption, score, alpha) < self.settings["min_constrained_score"] or unseen:
                path = "fallback"
            elif plan["proxy"] != plan["word"]:
                caption = fill_slot(caption, plan["proxy"], plan["word"])
        _, probability = evidence.kind()
        doubtful = min_confidence is not None and self.probability(score, probability, path) < min_confidence
        if path == "fallback" or doubtful:
            path, caption, score = "fallback", self.fallback_caption(evidence), 0.0
        confidence, review = self.confidence(score, probability, path)
        return Grounded(caption, score, path, evidence.top_classes(), confidence, review or doubtful, probability)

    def fallback_caption(self, evidence) -> str:
        """A short sentence that says only what the evidence says, and how sure it is: "a photo of a cat";
        "a photo of food, perhaps a loaf" (the kind's plain word sure, the class not); "a photo, perhaps
        of a clock"; "a photo"."""
        sure, seen = self.settings["sure"], self.settings["perhaps"]
        name, probability, general = evidence.top_word()
        if name is None or probability < seen:
            return "a photo"
        if probability >= sure:
            return f"a photo of {article(name)} {name}"
        if general and general != name and evidence.by_word.get(general, 0.0) >= sure:
            return f"a photo of {article(general)} {general}, perhaps {article(name)} {name}".replace(" a food,", " food,")
        return f"a photo, perhaps of {article(name)} {name}"

    def probability(self, score: float, evidence: float, path: str) -> float:
        """The fitted probability that the caption is right."""
        c = self.settings["confidence"]
        return 1.0 / (1.0 + math.exp(-(c["bias"] + c["score"] * score + c["evidence"] * evidence + c[path])))

    def confidence(self, score: float, evidence: float, path: str) -> tuple[float, bool]:
        """(confidence rounded for the record, needs_review)."""
        value = self.probability(score, evidence, path)
        return round(value, 3), value < self.settings["review_below"]


def fluency(caption: str, score: float, alpha: float) -> float:
    """A caption's log-probability over length**FLUENCY_ALPHA (length counting `<end>`), from its `score`
    normalised with `alpha`: one scale for the re-decoding threshold whatever the decoding's alpha."""
    length = len(caption.split()) + 1
    return score * length ** alpha / length ** FLUENCY_ALPHA


def plurals(word: str) -> list[str]:
    """The word and its regular plural ("bus" -> "buses", "bench" -> "benches", "puppy" -> "puppies")."""
    if word.endswith(("s", "x", "ch", "sh")):
        return [word, word + "es"]
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return [word, word[:-1] + "ies"]
    return [word, word + "s"]


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def fill_slot(caption: str, proxy: str, word: str) -> str:
    """The proxy word replaced by the evidence's word, plural kept and the article before it mended."""
    tokens = caption.split()
    singular, plural = plurals(proxy)
    for i, token in enumerate(tokens):
        if token in (singular, plural):
            tokens[i] = word if token == singular else plurals(word)[1]
            if token == singular and i and tokens[i - 1] in ("a", "an"):
                tokens[i - 1] = article(word)
            break
    return " ".join(tokens)
