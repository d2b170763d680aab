"""Grounding decisions on hand-made evidence: agree, re-decode with a forced word, fall back, flag."""
import numpy as np
import pytest

from altvoice.model.classifier import Evidence, ObjectClass
from altvoice.model.grounding import Grounder, fill_slot, plurals

VOCABULARY = ["<pad>", "<unk>", "<start>", "<end>", "a", "dog", "man", "cat", "cats", "bird", "birds", "red",
              "shirt", "runs", "sits", "on", "branch", "in", "animal", "an", "is", "puppy", "grass", "oven"]
CLASSES = [
    ObjectClass("tabby", "cat", "cat", ("cat", "animal")),
    ObjectClass("Labrador retriever", "dog", "dog", ("dog", "animal")),
    ObjectClass("macaw", "parrot", "bird", ("parrot", "bird", "animal")),
    ObjectClass("jersey", "shirt", "clothing", ("shirt", "clothing")),
    ObjectClass("giraffe", "giraffe", "animal", ("giraffe", "animal")),
    ObjectClass("microwave", "microwave", "thing", ("microwave", "oven")),
]
LIVING = {"man": "person", "men": "person", "dog": "dog", "puppy": "dog"}
ID = {w: i for i, w in enumerate(VOCABULARY)}


def evidence(detected=None, **probabilities) -> Evidence:
    labels = [c.label.split()[0].lower() for c in CLASSES]
    return Evidence(np.array([probabilities.get(label, 0.0) for label in labels]), CLASSES, detected)


@pytest.fixture
def grounder():
    return Grounder(VOCABULARY, CLASSES, LIVING)


def test_a_caption_naming_the_evidence_stands(grounder):
    assert grounder.check("a dog runs on a branch", evidence(labrador=0.9)) == ("agrees", None)
    assert grounder.check("a man in a red shirt runs", evidence(jersey=0.9)) == ("unverified", None)  # context only
    assert grounder.check("a man runs", evidence(tabby=0.3, labrador=0.2)) == ("unverified", None)  # weak evidence


def test_a_contradicted_caption_is_redecoded_with_the_word_forced_and_the_contradictions_banned(grounder):
    path, plan = grounder.check("a man in a red shirt sits on a dog", evidence(tabby=0.9))
    assert path == "constrained" and plan["word"] == plan["proxy"] == "cat"
    assert sorted(plan["required"]) == [ID["cat"], ID["cats"]]
    assert {ID["man"], ID["dog"], ID["puppy"]} <= set(plan["banned"]) and ID["cat"] not in plan["banned"]
    assert ID["shirt"] in plan["banned"]  # without people, nobody wears a shirt
    # a sign of people (a jersey) lets the caption keep its man; the dog stays banned
    _, plan = grounder.check("a man sits on a dog", evidence(tabby=0.8, jersey=0.2))
    assert ID["man"] not in plan["banned"] and ID["dog"] in plan["banned"] and ID["shirt"] not in plan["banned"]


def test_people_need_a_sign_and_objects_need_a_surer_one(grounder):
    people = lambda p: evidence({"people": p, "grass": 0.9}, microwave=0.9)  # noqa: E731
    assert grounder.check("a man runs on the grass", people(0.9))[0] == "unverified"  # objects: people may be there
    path, plan = grounder.check("a man runs on the grass", people(0.6))  # not sure enough beside a seen object
    assert (path, plan) == ("fallback", None)  # beside objects: no re-decoding
    assert grounder.finish(None, 0.0, path, plan, people(0.6)).caption == "a photo of a microwave"
    assert grounder.check("a man runs", evidence({"people": 0.6}, labrador=0.3))[0] == "unverified"  # no object
    assert grounder.check("a man runs", evidence({"people": 0.2}, labrador=0.3))[0] == "fallback"  # nothing to force
    assert grounder.check("a man runs", people(0.98))[0] == "unverified"  # a sure detector allows people anywhere
    assert grounder.check("a man sits on a cat", evidence({"people": 0.98}, tabby=0.9))[0] == "agrees"
    assert grounder.check("a man sits on a cat", evidence({"people": 0.9}, tabby=0.9))[0] == "constrained"


def test_people_the_detector_sees_are_forced_in_when_the_rest_is_ruled_out(grounder):
    seen = evidence({"people": 0.98}, microwave=0.9)  # a man and a dog beside an oven: the dog is ruled out
    path, plan = grounder.check("a man and a dog runs", seen)
    assert path == "constrained" and plan["word"] is None and sorted(plan["required"]) == [ID["man"]]
    assert ID["dog"] in plan["banned"] and ID["man"] not in plan["banned"]
    assert grounder.finish("a man runs in the grass", -1.0, path, plan, seen).caption == "a man runs in the grass"
    assert grounder.check("a man and a dog runs", evidence({"people": 0.9}, microwave=0.9))[0] == "fallback"


def test_a_redecoded_caption_may_only_add_what_the_detectors_see(grounder):
    seen = evidence({"grass": 0.02}, tabby=0.9)
    path, plan = grounder.check("a man runs", seen)
    assert ID["grass"] in plan["banned"]  # below min_detected: never generated
    seen = evidence({"grass": 0.08}, tabby=0.9)
    path, plan = grounder.check("a man runs", seen)
    assert grounder.finish("a cat sits on the grass", -1.0, path, plan, seen).caption == "a photo of a cat"
    assert grounder.finish("a cat sits on a branch", -1.0, path, plan, seen).caption == "a cat sits on a branch"


def test_a_word_outside_the_vocabulary_is_decoded_through_its_hypernym_and_filled_in(grounder):
    seen = evidence(macaw=0.9)
    path, plan = grounder.check("a dog runs", seen)
    assert (path, plan["word"], plan["proxy"]) == ("constrained", "parrot", "bird")
    found = grounder.finish("a bird sits on a branch", -0.8, path, plan, seen)
    assert found.caption == "a parrot sits on a branch" and found.grounding == "constrained"
    assert found.objects == [{"word": "parrot", "class": "macaw", "probability": 0.9}]
    path, plan = grounder.check("a man runs", evidence(giraffe=0.9))
    assert plan["proxy"] == "animal"
    assert grounder.finish("an animal runs", -0.5, path, plan, evidence(giraffe=0.9)).caption == "a giraffe runs"


def test_no_fluent_caption_falls_back_to_a_plain_true_sentence(grounder):
    seen = evidence(macaw=0.9)
    path, plan = grounder.check("a dog runs", seen)
    assert grounder.finish(None, float("-inf"), path, plan, seen).caption == "a photo of a parrot"
    low = grounder.settings["min_constrained_score"] - 1
    found = grounder.finish("a bird sits", low, path, plan, seen)
    assert (found.caption, found.grounding) == ("a photo of a parrot", "fallback")


def test_confidence_orders_captions_and_min_confidence_replaces_the_doubtful_ones(grounder):
    seen = evidence(labrador=0.9)
    sure = grounder.finish("a dog runs", -0.3, "agrees", None, seen)
    unsure = grounder.finish("a dog runs", -2.5, "agrees", None, seen)
    assert 0 < unsure.confidence < sure.confidence < 1
    assert unsure.needs_review == (unsure.confidence < grounder.settings["review_below"])
    kept = grounder.finish("a dog runs", -2.5, "agrees", None, seen, min_confidence=unsure.confidence - 0.01)
    assert kept.caption == "a dog runs"
    replaced = grounder.finish("a dog runs", -2.5, "agrees", None, seen, min_confidence=unsure.confidence + 0.01)
    assert (replaced.caption, replaced.grounding, replaced.needs_review) == ("a photo of a dog", "fallback", True)


def test_words_plurals_articles_and_slots():
    assert plurals("bus") == ["bus", "buses"] and plurals("puppy") == ["puppy", "puppies"]
    assert plurals("cat") == ["cat", "cats"] and plurals("day") == ["day", "days"]
    assert fill_slot("two birds sit on a bird", "bird", "parrot") == "two parrots sit on a bird"
    assert fill_slot("an animal runs", "animal", "giraffe") == "a giraffe runs"
    assert fill_slot("a bird flies", "bird", "owl") == "an owl flies"


def test_fallbacks_say_how_sure_the_evidence_is(grounder):
    def text(**probabilities):
        return grounder.fallback_caption(evidence(**probabilities))

    assert text(giraffe=0.9) == "a photo of a giraffe"
    assert text(macaw=0.45) == "a photo, perhaps of a parrot"  # "bird" 0.45: not sure either
    assert text(macaw=0.45, giraffe=0.2) == "a photo of an animal, perhaps a parrot"
    assert text(microwave=0.3) == "a photo, perhaps of a microwave" and text(microwave=0.1) == "a photo"


def test_a_redecoding_is_judged_on_one_fluency_scale_whatever_the_alpha(grounder):
    seen = evidence(macaw=0.9)
    path, plan = grounder.check("a dog runs", seen)
    caption, log_prob = "a bird sits on a branch", -26.0  # 6 tokens with <end>: -26 / 6**0.7 = -7.2
    assert grounder.finish(caption, log_prob / 6 ** 0.7, path, plan, seen, alpha=0.7).grounding == "fallback"
    assert grounder.finish(caption, log_prob / 6 ** 1.0, path, plan, seen, alpha=1.0).grounding == "fallback"
    assert grounder.finish(caption, -13.0 / 6 ** 1.0, path, plan, seen, alpha=1.0).grounding == "constrained"
