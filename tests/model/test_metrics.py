"""Caption metrics against values worked out by hand from the coco-caption definitions."""
import math

import pytest

from model.metrics import bleu, caption_metrics, cider_d, rouge_l, tokenize

CAT = "a cat sat on the mat".split()
REFS = [["the", "cat", "sat", "on", "the", "mat"], ["a", "cat", "is", "on", "a", "mat"]]


def test_tokenize_lower_cases_and_drops_punctuation_but_no_words():
    assert tokenize("A dog's ball, RED!  2 of them.") == ["a", "dogs", "ball", "red", "2", "of", "them"]


def test_bleu_clipped_ngram_precisions():
    # matches 6/6, 5/5, 3/4 ("a cat sat" is in no reference), 2/3; lengths equal: no brevity penalty
    scores = bleu([CAT], [REFS])
    expected = [1.0, 1.0, 0.75 ** (1 / 3), (0.75 * 2 / 3) ** (1 / 4)]
    assert scores == pytest.approx(expected, abs=1e-6)


def test_bleu_clips_repeated_words_to_the_reference_count():
    # "the" twice in a reference, "a" twice in the other: "a a a the" keeps 2 + 1 of 4 unigrams
    assert bleu([["a", "a", "a", "the"]], [REFS])[0] == pytest.approx(0.75 * math.exp(1 - 6 / 4), abs=1e-6)


def test_bleu_brevity_penalty_is_corpus_level():
    # "a cat": p1 = p2 = 1, length 2 against 6; with CAT too the corpus is 8 words against 12
    assert bleu([["a", "cat"]], [REFS])[:2] == pytest.approx([math.exp(1 - 6 / 2)] * 2, abs=1e-6)
    assert bleu([CAT, ["a", "cat"]], [REFS, REFS])[0] == pytest.approx(math.exp(1 - 12 / 8), abs=1e-6)


def test_bleu_takes_the_closest_reference_length_and_the_shorter_on_a_tie():
    # hypothesis of 5 words, references of 4 and 6: the 4 is taken, so there is no penalty
    assert bleu([list("abcde")], [[list("abcd"), list("abcdef")]])[0] == pytest.approx(1.0, abs=1e-6)
    assert bleu([list("abcde")], [[list("abcdefg")]])[0] == pytest.approx(math.exp(1 - 7 / 5), abs=1e-6)


def test_cider_d_by_hand():
    # Two images, so idf = log 2 for every n-gram (each is in one image's references).
    # Image 1: "a b" vs "a b": unigram and bigram cosines 1, 3- and 4-grams 0 -> (1 + 1) / 4 * 10 = 5.
    # Image 2: "c" vs "c d": unigram cosine 1/sqrt(2), length penalty exp(-1/72) on 0 vs 1 bigrams
    #   -> 0.70711 * 0.98621 / 4 * 10 = 1.74340.
    score = cider_d([["a", "b"], ["c"]], [[["a", "b"]], [["c", "d"]]])
    assert score == pytest.approx((5.0 + 10 / 4 * math.exp(-1 / 72) / math.sqrt(2)) / 2, abs=1e-6)


def test_cider_d_clips_hypothesis_counts():
    # "a a" vs "a b": tf-idf of "a" is 2 log 2 but clipped to the reference's log 2:
    # unigram score log2 * log2 / (2 log2 * sqrt2 log2) = 1 / (2 sqrt 2); the bigram "a a" scores 0.
    score = cider_d([["a", "a"], ["c"]], [[["a", "b"]], [["c", "d"]]])
    image_1 = 10 / 4 / (2 * math.sqrt(2))
    image_2 = 10 / 4 * math.exp(-1 / 72) / math.sqrt(2)
    assert score == pytest.approx((image_1 + image_2) / 2, abs=1e-6)


def test_cider_d_is_zero_for_a_hypothesis_sharing_nothing():
    assert cider_d([["x", "y"], ["c"]], [[["a", "b"]], [["c", "d"]]]) == pytest.approx(
        10 / 4 * math.exp(-1 / 72) / math.sqrt(2) / 2, abs=1e-6)


def test_rouge_l_by_hand():
    # LCS("a cat", "a cat sat") = 2: P = 1, R = 2/3, F = (1 + 1.44) P R / (R + 1.44 P)
    assert rouge_l([["a", "cat"]], [[["a", "cat", "sat"]]]) == pytest.approx(2.44 * (2 / 3) / (2 / 3 + 1.44))
    # best precision and best recall over references: LCS 5 with the first, 4 with the second -> 5/6
    assert rouge_l([CAT], [REFS]) == pytest.approx(5 / 6)


def test_caption_metrics_tokenizes_and_names_every_score():
    scores = caption_metrics({"1.jpg": "A cat sat on the mat."}, {"1.jpg": ["The cat sat on the mat!", "A cat is on a mat"]})
    assert set(scores) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr-D", "ROUGE-L"}
    assert scores["BLEU-1"] == 1.0 and scores["ROUGE-L"] == round(5 / 6, 4)


def test_caption_metrics_refuses_an_image_without_references():
    with pytest.raises(ValueError, match="reference"):
        caption_metrics({"1.jpg": "a cat"}, {"1.jpg": ["!!!"]})
