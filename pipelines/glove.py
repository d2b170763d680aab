"""The GloVe embedding matrix for a vocabulary: one row per word id, zeros where GloVe lacks the word."""
import fsspec
import numpy as np

from altvoice.transforms.captions import RESERVED_TOKENS


def read_glove(path: str, words: set[str]) -> dict[str, np.ndarray]:
    """Vectors for `words` from a GloVe text file (`word v1 v2 ...` per line), skipping malformed lines."""
    vectors, dim = {}, None
    with fsspec.open(path, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            word, _, rest = line.rstrip().partition(" ")
            if word not in words:
                continue
            try:
                vector = np.asarray(rest.split(" "), dtype=np.float32)
            except ValueError:
                continue
            if dim is None:
                dim = vector.size
            if vector.size == dim:
                vectors[word] = vector
    return vectors


def glove_matrix(path: str, vocabulary: list[str]) -> tuple[np.ndarray, dict]:
    """([len(vocabulary), dim] float32 matrix, coverage report) for a vocabulary in id order."""
    words = [w for w in vocabulary if w not in RESERVED_TOKENS]
    vectors = read_glove(path, set(words))
    if not vectors:
        raise ValueError(f"{path}: no GloVe vector for any of the {len(words)} vocabulary words")
    dim = next(iter(vectors.values())).size
    matrix = np.zeros((len(vocabulary), dim), np.float32)
    for index, word in enumerate(vocabulary):
        if word in vectors:
            matrix[index] = vectors[word]
    missing = sorted(w for w in words if w not in vectors)
    report = {
        "dim": dim,
        "words": len(words),
        "found": len(words) - len(missing),
        "coverage": round((len(words) - len(missing)) / max(len(words), 1), 4),
        "missing_examples": missing[:20],
    }
    return matrix, report


def write_glove_matrix(path: str, vocabulary: list[str], out_path: str) -> dict:
    """Writes the matrix as .npy to `out_path` (any fsspec URL) and returns the coverage report."""
    matrix, report = glove_matrix(path, vocabulary)
    with fsspec.open(out_path, "wb") as f:
        np.save(f, matrix)
    return {**report, "file": out_path.rsplit("/", 1)[-1]}
