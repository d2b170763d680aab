"""Caption metrics with the coco-caption definitions (pycocoevalcap), in pure Python.

Text is lower-cased with punctuation and symbols removed (as `transforms.captions` cleans
training captions) and no word removed. Every function takes, per image, one hypothesis
and its references, each a list of tokens.

- BLEU-1..4: corpus-level, clipped n-gram counts, brevity penalty from the reference length
  closest to each hypothesis (ties: the shorter), coco's tiny/small smoothing constants.
- CIDEr-D: n = 1..4, tf-idf vectors with document frequencies from the references of the
  evaluated set, hypothesis counts clipped to the reference's, a Gaussian length penalty
  (sigma 6) on the difference of bigram counts, mean over n and over references, times 10.
- ROUGE-L: longest common subsequence F-measure (beta 1.2) against the best reference.
METEOR is not reported: its reference version needs Java and WordNet paraphrase tables.
"""
import math
import unicodedata
from collections import Counter

Tokens = list[str]


def tokenize(text: str) -> Tokens:
    """Lower-case words with punctuation and symbols removed."""
    kept = "".join(c for c in text.lower() if unicodedata.category(c)[0] not in "PS")
    return kept.split()


def ngrams(tokens: Tokens, n: int) -> Counter:
    """Counts of all 1..n-grams, as tuples."""
    return Counter(tuple(tokens[i : i + k]) for k in range(1, n + 1) for i in range(len(tokens) - k + 1))


def bleu(hypotheses: list[Tokens], references: list[list[Tokens]], n: int = 4) -> list[float]:
    """[BLEU-1, ..., BLEU-n] over the corpus."""
    correct, guess = [0] * n, [0] * n
    test_length = ref_length = 0
    for hypothesis, refs in zip(hypotheses, references):
        counts, max_ref = ngrams(hypothesis, n), Counter()
        for ref in refs:
            max_ref |= ngrams(ref, n)
        for gram, count in counts.items():
            correct[len(gram) - 1] += min(count, max_ref[gram])
        for k in range(n):
            guess[k] += max(0, len(hypothesis) - k)
        test_length += len(hypothesis)
        ref_length += min((abs(len(ref) - len(hypothesis)), len(ref)) for ref in refs)[1]
    tiny, small = 1e-15, 1e-9
    scores, product = [], 1.0
    for k in range(n):
        product *= (correct[k] + tiny) / (guess[k] + small)
        scores.append(product ** (1.0 / (k + 1)))
    ratio = (test_length + tiny) / (ref_length + small)
    if ratio < 1:
        scores = [s * math.exp(1 - 1 / ratio) for s in scores]
    return scores


class CiderD:
    """CIDEr-D against a fixed corpus of references: document frequencies come from `references` (one list
    of token lists per image), whose tf-idf vectors are computed once; `score(i, hypothesis)` scores a
    hypothesis against image i's references. Tokens may be words or word ids. Self-critical training
    scores its samples with the training captions' statistics this way."""

    def __init__(self, references: list[list[Tokens]], n: int = 4, sigma: float = 6.0):
        self.n, self.sigma = n, sigma
        counts = [[ngrams(ref, n) for ref in refs] for refs in references]
        self.document_frequency = Counter(gram for refs in counts for gram in set().union(*refs))
        self.log_images = math.log(float(len(references)))
        self.references = [[self._vector(c) for c in refs] for refs in counts]

    def _vector(self, counts: Counter):
        n, vec, norm = self.n, [{} for _ in range(self.n)], [0.0] * self.n
        for gram, tf in counts.items():
            k = len(gram) - 1
            vec[k][gram] = value = tf * (self.log_images - math.log(max(1.0, self.document_frequency.get(gram, 0.0))))
            norm[k] += value**2
        length = sum(tf for gram, tf in counts.items() if len(gram) == 2)  # coco's length: the bigram count
        return vec, [math.sqrt(x) for x in norm[:n]], length

    def score(self, image: int, hypothesis: Tokens) -> float:
        vec_h, norm_h, len_h = self._vector(ngrams(hypothesis, self.n))
        refs, total = self.references[image], 0.0
        for vec_r, norm_r, len_r in refs:
            penalty = math.exp(-((len_h - len_r) ** 2) / (2 * self.sigma**2))
            for k in range(self.n):
                ref_k, value = vec_r[k], 0.0
                for gram, h in vec_h[k].items():
                    r = ref_k.get(gram)
                    if r is not None:
                        value += min(h, r) * r
                if norm_h[k] != 0 and norm_r[k] != 0:
                    total += value / (norm_h[k] * norm_r[k]) * penalty
        return total / self.n / len(refs) * 10.0


def cider_d(hypotheses: list[Tokens], references: list[list[Tokens]], n: int = 4, sigma: float = 6.0) -> float:
    """Corpus CIDEr-D: the mean of the images' scores, document frequencies from `references`."""
    scorer = CiderD(references, n, sigma)
    return sum(scorer.score(i, h) for i, h in enumerate(hypotheses)) / len(hypotheses)


def lcs_length(a: Tokens, b: Tokens) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(hypotheses: list[Tokens], references: list[list[Tokens]], beta: float = 1.2) -> float:
    """Mean ROUGE-L F-measure; per image, the best precision and best recall over its references."""
    scores = []
    for hypothesis, refs in zip(hypotheses, references):
        lcs = [lcs_length(ref, hypothesis) for ref in refs]
        precision = max(x / len(hypothesis) if hypothesis else 0.0 for x in lcs)
        recall = max(x / len(ref) for x, ref in zip(lcs, refs))
        if precision and recall:
            scores.append((1 + beta**2) * precision * recall / (recall + beta**2 * precision))
        else:
            scores.append(0.0)
    return sum(scores) / len(scores)


def caption_metrics(hypotheses: dict[str, str], references: dict[str, list[str]]) -> dict:
    """BLEU-1..4, CIDEr-D and ROUGE-L of {image: caption} against {image: [reference captions]}."""
    images = sorted(hypotheses)
    if not images:
        raise ValueError("no captions to score")
    hyps = [tokenize(hypotheses[i]) for i in images]
    refs = [[tokens for tokens in map(tokenize, references[i]) if tokens] for i in images]
    if not all(refs):
        raise ValueError("every captioned image needs a reference caption with words")
    scores = {f"BLEU-{k}": s for k, s in enumerate(bleu(hyps, refs), 1)}
    scores.update({"CIDEr-D": cider_d(hyps, refs), "ROUGE-L": rouge_l(hyps, refs)})
    return {name: round(value, 4) for name, value in scores.items()}
