"""Reading a preprocess output directory: its summary, vocabulary, GloVe matrix, image features and caption records."""
import json

import numpy as np
import tensorflow as tf

from altvoice.flags import UsageError
from altvoice.records import caption_spec, decode_features, features_pattern, image_spec, record_pattern
from altvoice.transforms.captions import RESERVED_TOKENS

SUMMARY_FILE = "summary.json"


def load_summary(data_dir: str) -> dict:
    """summary.json of a preprocess output, or UsageError if `data_dir` isn't one."""
    path = f"{data_dir.rstrip('/')}/{SUMMARY_FILE}"
    if not tf.io.gfile.exists(path):
        raise UsageError(f"--data {data_dir}: no {SUMMARY_FILE}; point --data at an `altvoice preprocess` --output")
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def read_vocabulary(data_dir: str, summary: dict) -> list[str]:
    """The vocabulary in id order; checked against the summary and the reserved tokens."""
    with tf.io.gfile.GFile(f"{data_dir.rstrip('/')}/{summary['vocabulary_file']}") as f:
        vocabulary = f.read().splitlines()
    if len(vocabulary) != summary["vocabulary_size"] or tuple(vocabulary[: len(RESERVED_TOKENS)]) != RESERVED_TOKENS:
        raise UsageError(f"--data {data_dir}: the vocabulary file doesn't match summary.json; re-run preprocess")
    return vocabulary


def load_glove(data_dir: str, summary: dict, seed: int | None = None) -> np.ndarray | None:
    """The GloVe matrix preprocess wrote, or None. Words GloVe lacks get small random vectors, not zeros,
    so that frozen embeddings still tell them apart; `<pad>` stays zero."""
    if "glove" not in summary:
        return None
    with tf.io.gfile.GFile(f"{data_dir.rstrip('/')}/{summary['glove']['file']}", "rb") as f:
        matrix = np.load(f)
    if matrix.shape[0] != summary["vocabulary_size"]:
        raise UsageError(f"--data {data_dir}: the GloVe matrix has {matrix.shape[0]} rows for a vocabulary "
                         f"of {summary['vocabulary_size']}; re-run preprocess")
    missing = ~matrix.any(axis=1)
    missing[0] = False
    found = matrix[matrix.any(axis=1)]
    scale = found.std() if found.size else 0.1
    matrix[missing] = np.random.default_rng(seed).normal(0.0, scale, (missing.sum(), matrix.shape[1]))
    return matrix


def check_format(data_dir: str, summary: dict) -> None:
    """UsageError for a preprocess output written before features were stored once per image."""
    if "feature_shape" not in summary:
        raise UsageError(f"--data {data_dir} was written by an older altvoice (features in every caption record); "
                         "re-run `altvoice preprocess` into a new --output")


def split_files(data_dir: str, split: str, pattern=record_pattern) -> list[str]:
    files = sorted(tf.io.gfile.glob(pattern(data_dir, split)))
    if not files:
        what = "image feature" if pattern is features_pattern else "caption"
        raise UsageError(f"--data {data_dir}: no {split} {what} records ({pattern(data_dir, split)}); "
                         f"run preprocess with a --{split}-split into one --output")
    return files


class Features:
    """A split's image features in memory (float16), and each image's row: what captions join to."""

    def __init__(self, data_dir: str, split: str, summary: dict):
        check_format(data_dir, summary)
        shape = tuple(summary["feature_shape"])
        names, arrays = [], []
        try:
            for record in tf.data.TFRecordDataset(split_files(data_dir, split, features_pattern)):
                example = tf.io.parse_single_example(record, image_spec())
                names.append(example["image"].numpy())
                arrays.append(decode_features(example["features"].numpy(), shape))
        except (tf.errors.InvalidArgumentError, ValueError) as err:
            raise UsageError(f"--data {data_dir}: {split} image records don't match summary.json (feature_shape "
                             f"{list(shape)}): re-run preprocess into one --output ({str(err)[:200]})") from None
        if len(set(names)) < len(names):
            raise UsageError(f"--data {data_dir}: {split} image records name an image twice: the features come "
                             "from several preprocess runs; re-run preprocess into a new --output")
        self.names = names
        self.array = np.stack(arrays) if arrays else np.zeros((0, *shape), np.float16)
        keys, rows = (names, tf.range(len(names), dtype=tf.int64)) if names else ([b""], tf.constant([-1], tf.int64))
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.string), rows), -1)

    def rows(self, images: tf.Tensor) -> tf.Tensor:
        """Row of each image name in `array`; -1 for a name without features."""
        return self.table.lookup(images)


def scan_split(data_dir: str, split: str, summary: dict, features: Features | None = None) -> int:
    """Reads a split once: checks every caption record against the summary's shapes and vocabulary, and that
    its image has features; returns its number of captions."""
    features = features or Features(data_dir, split, summary)
    spec = caption_spec(summary["max_length"])
    records = tf.data.TFRecordDataset(split_files(data_dir, split)).batch(1024)
    count, top, missing = 0, 0, None
    try:
        for batch in records.map(lambda r: tf.io.parse_example(r, spec)):
            count += int(tf.shape(batch["caption_ids"])[0])
            top = max(top, int(tf.reduce_max(batch["caption_ids"])))
            rows = features.rows(batch["image"]).numpy()
            if missing is None and (rows < 0).any():
                missing = batch["image"].numpy()[rows < 0][0].decode()
    except tf.errors.InvalidArgumentError as err:
        raise UsageError(
            f"--data {data_dir}: {split} records don't match summary.json (max_length {summary['max_length']}): "
            f"they come from another preprocess run; re-run preprocess into one --output "
            f"({err.message.splitlines()[0][:200]})"
        ) from None
    if top >= summary["vocabulary_size"]:
        raise UsageError(f"--data {data_dir}: {split} records use word id {top}, beyond the vocabulary of "
                         f"{summary['vocabulary_size']}: they come from another vocabulary; re-run preprocess")
    if missing is not None:
        raise UsageError(f"--data {data_dir}: {split} captions of {missing} have no image features: the records "
                         "come from different preprocess runs; re-run preprocess into one --output")
    if count == 0:
        raise UsageError(f"--data {data_dir}: the {split} split has no captions")
    return count


def caption_dataset(data_dir: str, split: str, summary: dict, batch_size: int, shuffle: bool = False,
                    seed: int | None = None, pooled: bool = False, features: Features | None = None) -> tf.data.Dataset:
    """Batches ((features, caption_ids[:, :-1]), caption_ids[:, 1:]) for teacher forcing.

    Each caption is joined to its image's features (held in memory once per image, float16, cast to
    float32 per batch); `pooled` averages a grid's cells into the pooled vector. Each batch is cut to
    its longest caption. Shuffled (training) batches also group captions of similar length, so that
    little time goes into padding.
    """
    features = features or Features(data_dir, split, summary)
    table = tf.constant(features.array)
    spec = caption_spec(summary["max_length"])
    files = tf.data.Dataset.from_tensor_slices(split_files(data_dir, split))
    if shuffle:
        files = files.shuffle(len(files), seed=seed)
    records = files.interleave(tf.data.TFRecordDataset, num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle:
        records = records.shuffle(20_000, seed=seed)
    examples = records.map(lambda r: tf.io.parse_single_example(r, spec), num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle:
        boundaries = list(range(8, min(summary["max_length"], 26), 2))
        batches = examples.bucket_by_sequence_length(
            lambda e: tf.cast(tf.math.count_nonzero(e["caption_ids"]), tf.int32), boundaries,
            [batch_size] * (len(boundaries) + 1))
    else:
        batches = examples.batch(batch_size)

    def join(batch):
        ids = tf.cast(batch["caption_ids"], tf.int32)
        length = tf.reduce_max(tf.reduce_sum(tf.cast(ids != 0, tf.int32), axis=1))
        image = tf.cast(tf.gather(table, features.rows(batch["image"])), tf.float32)
        if pooled and len(features.array.shape) == 3:
            image = tf.reduce_mean(image, axis=1)
        return (image, ids[:, : length - 1]), ids[:, 1:length]

    return batches.map(join, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
