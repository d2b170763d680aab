"""The TFRecord format preprocess writes and train reads: one tf.train.Example per caption."""
import numpy as np
import tensorflow as tf


def make_example(image: str, features: np.ndarray, caption_ids: np.ndarray, num_words: int) -> bytes:
    """Serialises one (image features, encoded caption) pair."""
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.encode()])),
        "features": tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(features, np.float32).tolist())),
        "caption_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=np.asarray(caption_ids, np.int64).tolist())),
        "num_words": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(num_words)])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def feature_spec(feature_size: int, max_length: int) -> dict:
    """The tf.io parsing spec for the records, given the summary's feature size and max length."""
    return {
        "image": tf.io.FixedLenFeature([], tf.string),
        "features": tf.io.FixedLenFeature([feature_size], tf.float32),
        "caption_ids": tf.io.FixedLenFeature([max_length], tf.int64),
        "num_words": tf.io.FixedLenFeature([], tf.int64),
    }


def record_pattern(data_dir: str, split: str) -> str:
    """Glob of a split's TFRecord shards inside a preprocess output directory."""
    return f"{data_dir.rstrip('/')}/tfrecords/{split}-*.tfrecord"
