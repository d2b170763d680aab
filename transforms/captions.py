"""Caption cleaning and encoding as TensorFlow string ops, exported by tf.transform.

Rules (the seed's, with one change): lower-case, punctuation and symbols removed,
words containing digits removed, `<start>`/`<end>` added. The seed also dropped
one-letter words ("a"); here that is an option, off by default, because captions
are spoken to people.
"""
import tensorflow as tf
import tensorflow_transform as tft

PAD, UNK, START, END = "<pad>", "<unk>", "<start>", "<end>"
RESERVED_TOKENS = (PAD, UNK, START, END)
PAD_ID, UNK_ID, START_ID, END_ID = range(len(RESERVED_TOKENS))
VOCAB_FILENAME = "words"


def clean_words(captions: tf.Tensor, drop_single_letters: bool = False) -> tf.RaggedTensor:
    """Tokenises a batch of raw captions into cleaned words, [batch, (words)]."""
    text = tf.strings.lower(captions, encoding="utf-8")
    text = tf.strings.regex_replace(text, r"[\pP\pS]", "")
    words = tf.strings.split(text)
    keep = tf.logical_not(tf.strings.regex_full_match(words, r".*[\pN].*"))
    if drop_single_letters:
        keep = tf.logical_and(keep, tf.strings.length(words, unit="UTF8_CHAR") > 1)
    return tf.ragged.boolean_mask(words, keep)


def add_markers(words: tf.RaggedTensor) -> tf.RaggedTensor:
    """Wraps each row of words in `<start>` ... `<end>`."""
    rows = words.nrows()
    start = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], START))
    end = tf.RaggedTensor.from_tensor(tf.fill([rows, 1], END))
    return tf.concat([start, words, end], axis=1)


def clean_captions(captions: tf.Tensor, drop_single_letters: bool = False) -> tf.Tensor:
    """Cleaned caption strings, e.g. "<start> a child in a pink dress <end>"."""
    tokens = add_markers(clean_words(captions, drop_single_letters))
    return tf.strings.reduce_join(tokens, axis=1, separator=" ")


def make_preprocessing_fn(min_word_count: int, max_length: int, drop_single_letters: bool = False):
    """The tf.transform preprocessing_fn: raw {image, caption} -> padded id sequences.

    Outputs `caption_ids` (int64 [max_length], `<start>` ... `<end>` then `<pad>`s;
    captions longer than max_length keep their first words and their `<end>`),
    `num_words` (cleaned words before truncation) and `image` unchanged.
    """
    if max_length < 3:
        raise ValueError(f"max_length must be at least 3, got {max_length}")

    def preprocessing_fn(inputs):
        words = clean_words(inputs["caption"], drop_single_letters)
        vocab = tft.vocabulary(
            words,
            frequency_threshold=min_word_count,
            vocab_filename=VOCAB_FILENAME,
            reserved_tokens=list(RESERVED_TOKENS),
        )
        tokens = add_markers(words[:, : max_length - 2])
        ids = tft.apply_vocabulary(tokens, vocab, default_value=UNK_ID)
        return {
            "image": inputs["image"],
            "caption_ids": ids.to_tensor(default_value=PAD_ID, shape=[None, max_length]),
            "num_words": tf.cast(words.row_lengths(), tf.int64),
        }

    return preprocessing_fn
