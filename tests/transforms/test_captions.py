"""Caption cleaning rules and the tf.transform vocabulary: threshold, reserved ids, truncation."""
import apache_beam as beam
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from altvoice.transforms.captions import END_ID, PAD_ID, START_ID, UNK_ID, clean_captions, make_preprocessing_fn


def clean(text: str, **kwargs) -> str:
    return clean_captions(tf.constant([text]), **kwargs).numpy()[0].decode()


def test_seed_example():
    seed = "A child in a pink dress is climbing up a set of stairs in an entry way ."
    expected = "<start> a child in a pink dress is climbing up a set of stairs in an entry way <end>"
    assert clean(seed) == expected


def test_seed_rule_dropping_one_letter_words_is_an_option():
    seed = "A child in a pink dress is climbing up a set of stairs in an entry way ."
    assert clean(seed, drop_single_letters=True) == (
        "<start> child in pink dress is climbing up set of stairs in an entry way <end>"
    )


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Two DOGS, running!", "two dogs running"),
        ("a dog's ball", "a dogs ball"),
        ("3 kids play 2nd base at 10am", "kids play base at"),
        ("a t-shirt & jeans ($20)", "a tshirt jeans"),
        ("  spaces   everywhere\t", "spaces everywhere"),
        ("Café «crème»", "café crème"),
        ("123 !!!", ""),
    ],
)
def test_lower_case_punctuation_and_numbers_removed(raw, expected):
    assert clean(raw) == f"<start> {expected} <end>".replace("  ", " ")


RAW_SPEC = {"image": tf.io.FixedLenFeature([], tf.string), "caption": tf.io.FixedLenFeature([], tf.string)}


def test_vocabulary_threshold_reserved_ids_and_truncation(tmp_path):
    train = ["dog dog dog cat", "dog cat bird"]  # dog x4, cat x2, bird x1
    dev = ["dog cat bird fish", "cat dog dog dog dog dog"]
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    rows = lambda texts: [{"image": "x.jpg", "caption": t} for t in texts]  # noqa: E731
    with test_pipeline.TestPipeline() as p, tft_beam.Context(temp_dir=str(tmp_path)):
        fn = make_preprocessing_fn(min_word_count=2, max_length=6)
        (_, _), transform_fn = (p | "Train" >> beam.Create(rows(train)), metadata) | (
            tft_beam.AnalyzeAndTransformDataset(fn)
        )
        dev_out, _ = ((p | "Dev" >> beam.Create(rows(dev)), metadata), transform_fn) | tft_beam.TransformDataset()
        ids = dev_out | beam.Map(lambda row: (tuple(row["caption_ids"].tolist()), int(row["num_words"])))
        # vocabulary: <pad> <unk> <start> <end> dog cat (bird seen once: below the threshold)
        dog, cat = 4, 5
        assert_that(
            ids,
            equal_to([
                ((START_ID, dog, cat, UNK_ID, UNK_ID, END_ID), 4),
                ((START_ID, cat, dog, dog, dog, END_ID), 6),  # 6 words cut to 4, <end> kept
            ]),
        )
    assert (PAD_ID, UNK_ID, START_ID, END_ID) == (0, 1, 2, 3)


def test_padding_fills_short_captions(tmp_path):
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    with test_pipeline.TestPipeline() as p, tft_beam.Context(temp_dir=str(tmp_path)):
        data = p | beam.Create([{"image": "x.jpg", "caption": "a dog"}])
        (out, _), _ = (data, metadata) | tft_beam.AnalyzeAndTransformDataset(make_preprocessing_fn(None, 6))
        ids = out | beam.Map(lambda row: tuple(row["caption_ids"].tolist()))
        # ties in frequency are ordered reverse-lexicographically: "dog" is 4, "a" is 5
        assert_that(ids, equal_to([(START_ID, 5, 4, END_ID, PAD_ID, PAD_ID)]))


def test_max_length_below_three_is_refused():
    with pytest.raises(ValueError, match="at least 3"):
        make_preprocessing_fn(1, 2)
