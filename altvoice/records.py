"""The TFRecord format preprocess writes and train reads: one tf.train.Example per caption."""
import numpy as np
import tensorflow as tf


def _floats(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(values, np.float32).tolist()))


def make_example(image: str, features: np.ndarray, caption_ids: np.ndarray, num_words: int,
                 flipped_features: np.ndarray | None = None) -> bytes:
    """Serialises one (image features, encoded caption) pair; `flipped_features` are its mirror image's."""
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.encode()])),
        "features": _floats(features),
        "caption_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=np.asarray(caption_ids, np.int64).tolist())),
        "num_words": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(num_words)])),
    }
    if flipped_features is not None:
        feature["flipped_features"] = _floats(flipped_features)
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def feature_spec(feature_size: int, max_length: int, flipped: bool = False) -> dict:
    """The tf.io parsing spec for the records, given the summary's feature size, max length and flip_features."""
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "features": tf.io.FixedLenFeature([feature_size], tf.float32),
        "caption_ids": tf.io.FixedLenFeature([max_length], tf.int64),
        "num_words": tf.io.FixedLenFeature([], tf.int64),
    }
    if flipped:
        spec["flipped_features"] = tf.io.FixedLenFeature([feature_size], tf.float32)
    return spec


def summary_spec(summary: dict) -> dict:
    """The parsing spec of a preprocess output's records, from its summary.json."""
    return feature_spec(summary["feature_size"], summary["max_length"], summary.get("flip_features", False))


def record_pattern(data_dir: str, split: str) -> str:
    """Glob of a split's TFRecord shards inside a preprocess output directory."""
    return f"{data_dir.rstrip('/')}/tfrecords/{split}-*.tfrecord"
