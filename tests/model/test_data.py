"""Reading preprocess output for training: teacher-forcing batches and the GloVe matrix."""
import numpy as np

from altvoice.model.data import caption_dataset, load_glove, load_summary, scan_split
from altvoice.transforms.captions import END_ID


def batches(prepared, split, shuffle):
    summary = load_summary(str(prepared))
    return [(f.numpy(), x.numpy(), y.numpy()) for (f, x), y in caption_dataset(
        str(prepared), split, summary, batch_size=4, shuffle=shuffle, seed=1)]


def test_batches_shift_by_one_token_and_stop_at_the_longest_caption(prepared):
    for features, inputs, targets in batches(prepared, "dev", shuffle=False):
        assert features.shape == (len(inputs), 1280)
        np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
        assert (targets[:, -1] != 0).any()  # the longest caption's <end> is the last target
        assert ((inputs != 0) & (inputs != END_ID)).sum() == (targets != 0).sum()  # a target for each word so far


def test_shuffled_batches_hold_every_caption_once_grouped_by_length(prepared):
    found = batches(prepared, "train", shuffle=True)
    assert sum(len(x) for _, x, _ in found) == scan_split(str(prepared), "train", load_summary(str(prepared))) == 40
    for _, inputs, _ in found:
        lengths = (inputs != 0).sum(axis=1)
        assert lengths.max() - lengths.min() <= 2  # buckets are two tokens wide below 26


def test_glove_words_keep_their_vectors_and_missing_ones_get_random_ones(prepared):
    summary = load_summary(str(prepared))
    written = np.load(prepared / summary["glove"]["file"])
    matrix = load_glove(str(prepared), summary, seed=0)
    found = written.any(axis=1)
    assert 0 < found.sum() < len(found) - 1
    np.testing.assert_array_equal(matrix[found], written[found])
    assert not matrix[0].any() and matrix[1:][~found[1:]].all(axis=1).all()
