"""Caption metrics against values worked out by hand from the coco-caption definitions."""
import math

import pytest

from altvoice.model.metrics import bleu, caption_metrics, cider_d, rouge_l, tokenize

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


# A worked case: two images with two references each and short candidates, in caption_metrics' tokens.
# Every expected value below is worked out by hand from the coco-caption definitions (and agrees with
# pycocoevalcap's Bleu, Cider and Rouge scorers on the same tokens).
HYPOTHESES = [["a", "dog", "runs", "on"], ["cat", "cat"]]
REFERENCES = [
    [["a", "dog", "runs", "on", "grass"], ["the", "dog", "runs"]],
    [["a", "black", "cat", "sleeps"], ["a", "cat", "sleeps", "on", "the", "bed"]],
]
BP = math.exp(1 - 7 / 6)
BLEU = [5 / 6 * BP, (5 / 8) ** (1 / 2) * BP, (5 / 8) ** (1 / 3) * BP, (5 / 8) ** (1 / 4) * BP]
DOG_CIDER = 10 * math.exp(-1 / 72) * (2 * math.sqrt(2 / 3) + math.sqrt(3) / 2 + 1 / math.sqrt(2)
                                       + 1 + 1 / math.sqrt(6)) / 4 / 2
CAT_CIDER = 10 * (math.exp(-1 / 18) + math.exp(-2 / 9)) / (2 * math.sqrt(3)) / 4 / 2
CIDER = (DOG_CIDER + CAT_CIDER) / 2
ROUGE = (61 / 70 + 61 / 194) / 2


def test_bleu_worked_case_pools_the_corpus_counts():
    # dog, "a dog runs on": every 1..4-gram of it is in "a dog runs on grass": matches 4/4, 3/3, 2/2, 1/1.
    #   References of 5 and 3 words are both 1 word away from its 4: the shorter, 3, is the reference length.
    # cat, "cat cat": "cat" is at most once in a reference, so its count 2 is clipped to 1: 1/2 unigrams;
    #   the bigram "cat cat" is in no reference: 0/1; no 3- or 4-grams. Closest reference length: 4 (vs 6).
    # Corpus: clipped matches [4+1, 3+0, 2, 1] over n-grams [4+2, 3+1, 2, 1]: p1 = 5/6, p2 = 3/4, p3 = p4 = 1.
    # Hypothesis length c = 4 + 2 = 6 < r = 3 + 4 = 7: brevity penalty BP = exp(1 - r/c) = exp(1 - 7/6).
    # BLEU-n = BP (p1 ... pn)^(1/n): 5/6 BP, (5/8)^(1/2) BP, (5/8)^(1/3) BP, (5/8)^(1/4) BP
    #        = 0.705401, 0.669203, 0.723732, 0.752641
    # (coco's smoothing, (matches + 1e-15) / (n-grams + 1e-9), moves these by about 1e-9.)
    assert bleu(HYPOTHESES, REFERENCES) == pytest.approx(BLEU, abs=1e-6)


def test_bleu_worked_case_is_not_the_mean_of_sentence_bleu():
    # Alone, dog has every precision 1 and c = 4 > r = 3: BLEU 1 at every n. Alone, cat has p1 = 1/2,
    # p2 = 0 (so BLEU-2..4 are ~0, only the smoothing constants) and c = 2 < r = 4: BP = exp(1 - 4/2).
    dog, cat = (bleu([h], [r]) for h, r in zip(HYPOTHESES, REFERENCES))
    assert dog == pytest.approx([1.0] * 4, abs=1e-6)
    assert cat == pytest.approx([0.5 * math.exp(-1), 0, 0, 0], abs=1e-6)
    # Their mean, (1 + 0.5/e) / 2 = 0.591970 for BLEU-1 and about 0.5 for BLEU-2..4, is not the corpus BLEU.
    mean = [(a + b) / 2 for a, b in zip(dog, cat)]
    assert all(abs(m - c) > 0.1 for m, c in zip(mean, BLEU))


def test_cider_d_worked_case_with_document_frequencies_clipping_and_length_penalty():
    # 2 images, so idf(g) = log 2 - log df(g), df(g) = how many images have g in one of their references:
    #   "a" (dog's 1st, cat's), "on" (dog's 1st, cat's 2nd) and "the" (dog's 2nd, cat's 2nd): df 2, idf 0;
    #   every other n-gram df 1 (e.g. "cat" and "sleeps", in both of cat's references: one image), idf log 2 = w.
    #   All non-zero weights are w, so each cosine below is a ratio of (clipped) counts.
    # dog, "a dog runs on" (3 bigrams); tf-idf by n: {dog, runs: w} (a, on: 0), norm sqrt2 w;
    #   {a dog, dog runs, runs on: w}, sqrt3 w; {a dog runs, dog runs on: w}, sqrt2 w; {a dog runs on: w}, w.
    #   vs "a dog runs on grass" (4 bigrams): {dog, runs, grass} sqrt3 w; 4 bigrams 2w; 3 trigrams sqrt3 w;
    #     2 4-grams sqrt2 w. Cosines 2/(sqrt2 sqrt3), 3/(sqrt3 2), 2/(sqrt2 sqrt3), 1/sqrt2 = 0.8165, 0.8660,
    #     0.8165, 0.7071; length penalty exp(-(3 - 4)^2 / (2 * 6^2)) = exp(-1/72).
    #   vs "the dog runs" (2 bigrams): {dog, runs} (the: 0) sqrt2 w; {the dog, dog runs} sqrt2 w;
    #     {the dog runs} w; no 4-gram. Cosines 2/2 = 1, 1/(sqrt3 sqrt2) = 0.4082, 0, 0; penalty exp(-1/72).
    #   dog = 10 * exp(-1/72) * (2 sqrt(2/3) + sqrt3/2 + 1/sqrt2 + 1 + 1/sqrt6) / 4 n / 2 references = 5.688410
    # cat, "cat cat" (1 bigram): {cat: 2w}, norm 2w; {cat cat: w}, in no reference; no 3-, 4-grams.
    #   vs "a black cat sleeps" (3 bigrams): unigrams {black, cat, sleeps: w} (a: 0), norm sqrt3 w; "cat"
    #     clipped to the reference's w: min(2w, w) * w / (2w * sqrt3 w) = 1/(2 sqrt3) = 0.2887 (unclipped 2x);
    #     penalty exp(-(1 - 3)^2 / 72) = exp(-1/18).
    #   vs "a cat sleeps on the bed" (5 bigrams): {cat, sleeps, bed: w} (a, on, the: 0), sqrt3 w: 1/(2 sqrt3);
    #     penalty exp(-(1 - 5)^2 / 72) = exp(-2/9).
    #   cat = 10 * (exp(-1/18) + exp(-2/9)) / (2 sqrt3) / 4 / 2 = 0.630285
    # CIDEr-D = (5.688410 + 0.630285) / 2 = 3.159348
    assert DOG_CIDER == pytest.approx(5.688410, abs=1e-6) and CAT_CIDER == pytest.approx(0.630285, abs=1e-6)
    assert cider_d(HYPOTHESES, REFERENCES) == pytest.approx(CIDER, abs=1e-6)


def test_rouge_l_worked_case():
    # F = (1 + beta^2) P R / (R + beta^2 P) with beta = 1.2 (beta^2 = 1.44), P and R each the best over references.
    # dog, "a dog runs on" (4): LCS 4 with "a dog runs on grass" (5): P 1, R 4/5; LCS 2 ("dog runs") with
    #   "the dog runs": P 1/2, R 2/3. F = 2.44 * 1 * 0.8 / (0.8 + 1.44) = 1.952 / 2.24 = 61/70 = 0.871429
    # cat, "cat cat" (2): LCS 1 with both references (4 and 6 words): P 1/2, R 1/4 (the best).
    #   F = 2.44 * 1/2 * 1/4 / (1/4 + 0.72) = 0.305 / 0.97 = 61/194 = 0.314433
    # ROUGE-L = (61/70 + 61/194) / 2 = 0.592931
    assert rouge_l(HYPOTHESES, REFERENCES) == pytest.approx(ROUGE, abs=1e-6)
    # beta weighs recall: with beta 1 the F's are 2 * 0.8 / 1.8 = 8/9 and 2 * 1/8 / (3/4) = 1/3, mean 11/18
    assert rouge_l(HYPOTHESES, REFERENCES, beta=1.0) == pytest.approx(11 / 18, abs=1e-6)


def test_rouge_l_takes_the_best_precision_and_the_best_recall_from_different_references():
    # "a b c d" vs "a b c d e f g h": LCS 4, P 1, R 1/2; vs "a b x": LCS 2, P 1/2, R 2/3.
    # Best P = 1, best R = 2/3: F = 2.44 * 2/3 / (2/3 + 1.44) = 4.88 / 6.32 = 61/79 = 0.772152, more than
    # either reference's own F (1.22/1.94 = 0.6289 and 0.8133/1.3867 = 0.5865).
    refs = [list("abcdefgh"), ["a", "b", "x"]]
    assert rouge_l([list("abcd")], [refs]) == pytest.approx(61 / 79, abs=1e-6)


def test_caption_metrics_worked_case_from_raw_text():
    # The same case as text: tokenizing drops case and punctuation; a reference with no words ("!!!") is
    # dropped rather than counted as a third reference; an image with references but no caption is not part
    # of the evaluated set (its references would change CIDEr-D's image count and document frequencies).
    hypotheses = {"dog.jpg": "A dog runs on.", "cat.jpg": "Cat, cat!"}
    references = {"dog.jpg": ["A dog runs on grass.", "The dog runs!", "!!!"],
                  "cat.jpg": ["a black cat sleeps", "A cat sleeps on the bed ."],
                  "uncaptioned.jpg": ["a dog and a cat"]}
    expected = {**{f"BLEU-{n}": b for n, b in enumerate(BLEU, 1)}, "CIDEr-D": CIDER, "ROUGE-L": ROUGE}
    assert caption_metrics(hypotheses, references) == {name: round(value, 4) for name, value in expected.items()}
    # = BLEU-1..4 0.7054, 0.6692, 0.7237, 0.7526; CIDEr-D 3.1593; ROUGE-L 0.5929


def test_caption_metrics_tokenizes_and_names_every_score():
    scores = caption_metrics({"1.jpg": "A cat sat on the mat."}, {"1.jpg": ["The cat sat on the mat!", "A cat is on a mat"]})
    assert set(scores) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr-D", "ROUGE-L"}
    assert scores["BLEU-1"] == 1.0 and scores["ROUGE-L"] == round(5 / 6, 4)


def test_caption_metrics_refuses_an_image_without_references():
    with pytest.raises(ValueError, match="reference"):
        caption_metrics({"1.jpg": "a cat"}, {"1.jpg": ["!!!"]})
