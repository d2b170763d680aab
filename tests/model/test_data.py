"""Reading preprocess output for training: teacher-forcing batches and the GloVe matrix."""
import numpy as np

from model.data import caption_dataset, load_glove, load_summary, scan_split
from transforms.captions import END_ID


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


def test_mirror_image_features_are_drawn_at_random_for_training_and_averaged_otherwise(prepared, tmp_path):
    import json
    import shutil

    import tensorflow as tf

    from altvoice.records import make_example, record_pattern, summary_spec

    data = shutil.copytree(prepared, tmp_path / "data")
    summary = load_summary(str(data))
    originals = []
    for split in ("train", "dev"):
        for path in tf.io.gfile.glob(record_pattern(str(data), split)):
            records = [tf.io.parse_single_example(r, summary_spec(summary)) for r in tf.data.TFRecordDataset(path)]
            with tf.io.TFRecordWriter(path) as writer:
                for e in records:
                    features = e["features"].numpy()
                    originals.append(features)
                    writer.write(make_example(e["image"].numpy().decode(), features, e["caption_ids"].numpy(),
                                              e["num_words"].numpy(), features + 1.0))
    (data / "summary.json").write_text(json.dumps({**summary, "flip_features": True}))
    originals = np.unique(np.stack(originals), axis=0)

    def kinds(split, shuffle):
        rows = np.concatenate([f for f, _, _ in batches(data, split, shuffle)])
        return [next(k for k, shift in (("image", 0.0), ("mirror", 1.0), ("mean", 0.5))
                     if np.isclose(rows[i] - shift, originals, atol=1e-5).all(axis=1).any()) for i in range(len(rows))]

    assert set(kinds("dev", shuffle=False)) == {"mean"}
    train = kinds("train", shuffle=True)
    assert set(train) == {"image", "mirror"} and 10 <= train.count("mirror") <= 30  # 40 captions, p = 0.5
