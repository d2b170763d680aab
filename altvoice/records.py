"""The TFRecords preprocess writes and train reads: each image's features once, and each caption naming its image.

    <data>/features/<split>-*.tfrecord   one tf.train.Example per image: its name and its features as
                                         float16 bytes, [feature_size] (pooled) or [cells, feature_size] (grid)
    <data>/tfrecords/<split>-*.tfrecord  one tf.train.Example per caption: its image's name and word ids
"""
import numpy as np
import tensorflow as tf

FEATURES_DTYPE = np.float16


def make_image_example(image: str, features: np.ndarray) -> bytes:
    """Serialises one image's features (stored as float16)."""
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.encode()])),
        "features": tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[np.asarray(features, FEATURES_DTYPE).tobytes()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def make_caption_example(image: str, caption_ids: np.ndarray, num_words: int) -> bytes:
    """Serialises one encoded caption of the image named `image`."""
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.encode()])),
        "caption_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=np.asarray(caption_ids, np.int64).tolist())),
        "num_words": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(num_words)])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def image_spec() -> dict:
    """The tf.io parsing spec of the image records (decode `features` with `decode_features`)."""
    return {"image": tf.io.FixedLenFeature([], tf.string), "features": tf.io.FixedLenFeature([], tf.string)}


def caption_spec(max_length: int) -> dict:
    """The tf.io parsing spec of the caption records, given the summary's max length."""
    return {
        "image": tf.io.FixedLenFeature([], tf.string),
        "caption_ids": tf.io.FixedLenFeature([max_length], tf.int64),
        "num_words": tf.io.FixedLenFeature([], tf.int64),
    }


def decode_features(data: bytes, shape: tuple) -> np.ndarray:
    """An image record's features as a float16 array of `shape` (the summary's feature_shape); ValueError
    when the bytes don't fit it."""
    array = np.frombuffer(data, FEATURES_DTYPE)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{array.size} feature values, expected {list(shape)}")
    return array.reshape(shape)


def record_pattern(data_dir: str, split: str) -> str:
    """Glob of a split's caption TFRecord shards inside a preprocess output directory."""
    return f"{data_dir.rstrip('/')}/tfrecords/{split}-*.tfrecord"


def features_pattern(data_dir: str, split: str) -> str:
    """Glob of a split's image-feature TFRecord shards."""
    return f"{data_dir.rstrip('/')}/features/{split}-*.tfrecord"
