"""Word detectors: linear probes on the captioner's own image features, one per frequent caption noun.

In the spirit of Fang et al. 2015 ("From Captions to Visual Concepts and Back"): a photo "has" a word
when its reference captions use it; a logistic regression on the pooled backbone features then
says how likely each word is to be seen. They fill what the ImageNet classifier cannot say: people
(`PEOPLE`: ImageNet has no person class) and scene words such as water, grass or snow. Fitted by
bench/train_word_detectors.py; they cost one matrix product per batch at caption time.

    word_detectors.npz   words [K], weights [K, feature_size], biases [K]
"""
import numpy as np

DETECTORS_FILE = "word_detectors.npz"
PEOPLE = "people"  # the detector of any person word


def fit_logistic(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, l2: float = 1.0,
                 steps: int = 15) -> np.ndarray:
    """[bias, coefficients...] of a logistic regression of y (0/1) on x, weighted and L2-regularised
    (the bias is not), by Newton's method."""
    weights = np.ones(len(x)) if weights is None else weights
    x = np.hstack([np.ones((len(x), 1)), x])
    beta = np.zeros(x.shape[1])
    penalty = np.diag([0.0] + [l2] * (x.shape[1] - 1))
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-x @ beta))
        gradient = x.T @ (weights * (p - y)) + penalty @ beta
        hessian = (x * (weights * p * (1 - p))[:, None]).T @ x + penalty
        beta -= np.linalg.solve(hessian, gradient)
    return beta


class WordDetectors:
    """Probabilities that each word would be used to describe a photo, from its features."""

    def __init__(self, words: list[str], weights: np.ndarray, biases: np.ndarray):
        self.words, self.weights, self.biases = list(words), np.asarray(weights), np.asarray(biases)

    @classmethod
    def fit(cls, features: np.ndarray, labels: dict[str, np.ndarray], l2: float = 100.0) -> "WordDetectors":
        """One probe per word from features [N, F] and its 0/1 labels [N], fitted on standardised
        features with the scaling folded into the weights."""
        mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
        standard = (features - mean) / scale
        weights, biases = [], []
        for word, y in labels.items():
            beta = fit_logistic(standard, y.astype(np.float64), l2=l2)
            weights.append(beta[1:] / scale)
            biases.append(beta[0] - (beta[1:] / scale) @ mean)
        return cls(list(labels), np.array(weights, np.float32), np.array(biases, np.float32))

    def __call__(self, features: np.ndarray) -> list[dict[str, float]]:
        """{word: probability} per row of features [N, F]."""
        logits = np.asarray(features, np.float64) @ self.weights.T.astype(np.float64) + self.biases
        probabilities = 1.0 / (1.0 + np.exp(-logits))
        return [dict(zip(self.words, row.tolist())) for row in probabilities]

    def save(self, path: str) -> None:
        with open(path, "wb") as f:
            np.savez(f, words=np.array(self.words), weights=self.weights, biases=self.biases)

    @classmethod
    def load(cls, path: str) -> "WordDetectors":
        """The detectors saved at `path`; ValueError when the file is not whole."""
        import zipfile

        try:
            with np.load(path) as data:
                words, weights, biases = [str(w) for w in data["words"]], data["weights"], data["biases"]
        except (zipfile.BadZipFile, EOFError, KeyError, OSError) as err:
            raise ValueError(f"{path}: not a word detectors file ({type(err).__name__}: {err})") from None
        if weights.ndim != 2 or len(words) != len(weights) or biases.shape != (len(words),):
            raise ValueError(f"{path}: {len(words)} words, weights {weights.shape}, biases {biases.shape}")
        return cls(words, weights, biases)
