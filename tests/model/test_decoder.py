"""The merge decoder: teacher forcing scores what the seed's per-prefix samples score, and the
step function used for decoding continues the LSTM exactly as the full-sequence model runs it."""
import keras
import numpy as np
import pytest

from altvoice.model.decoder import BANNED_IDS, Decoder, build_caption_model, prefix_model
from altvoice.model.train import compile_model
from altvoice.transforms.captions import END_ID, START_ID

VOCAB, FEATURES = 30, 12


def captions(rng, count: int, length: int = 9) -> np.ndarray:
    """`<start>` words `<end>` then padding, of assorted lengths."""
    ids = np.zeros((count, length), np.int32)
    for row in range(count):
        words = rng.integers(4, VOCAB, rng.integers(1, length - 1))
        ids[row, : len(words) + 2] = [START_ID, *words, END_ID]
    return ids


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(1)
    model = build_caption_model(VOCAB, FEATURES, embedding_dim=8, units=16)
    compile_model(model, 1e-3)
    return model


def test_teacher_forcing_loss_equals_the_per_prefix_loss(model):
    rng = np.random.default_rng(0)
    features, ids = rng.normal(size=(6, FEATURES)).astype("float32"), captions(rng, 6)
    loss = model.evaluate([features, ids[:, :-1]], ids[:, 1:], batch_size=6, verbose=0)
    rows, prefixes, targets = [], [], []  # the seed's samples: every (padded prefix, next word) of every caption
    for row, caption in enumerate(ids):
        for t in range(1, np.count_nonzero(caption)):
            rows.append(row)
            prefixes.append(np.r_[caption[:t], np.zeros(ids.shape[1] - 1 - t, np.int32)])
            targets.append(caption[t])
    logits = prefix_model(model).predict_on_batch([features[rows], np.stack(prefixes)])
    per_prefix = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(np.array(targets), logits)
    assert len(targets) == np.count_nonzero(ids[:, 1:])
    assert loss == pytest.approx(float(per_prefix), rel=1e-5)


def test_step_by_step_decoding_matches_the_full_sequence(model):
    rng = np.random.default_rng(1)
    features, ids = rng.normal(size=(3, FEATURES)).astype("float32"), captions(rng, 3)
    logits = model.predict_on_batch([features, ids[:, :-1]]).astype(np.float64)
    logits[:, :, list(BANNED_IDS)] = -np.inf
    expected = logits - np.logaddexp.reduce(logits, axis=2, keepdims=True)
    decoder, allowed = Decoder(model), [i for i in range(VOCAB) if i not in BANNED_IDS]
    state = decoder.encode(features)
    for t in range(ids.shape[1] - 1):
        log_probs, state = decoder.step(ids[:, t], state)
        assert np.isneginf(log_probs[:, list(BANNED_IDS)]).all()
        np.testing.assert_allclose(log_probs[:, allowed], expected[:, t, allowed], atol=1e-4)


def test_glove_initialises_a_frozen_embedding_unless_asked():
    matrix = np.random.default_rng(2).normal(size=(VOCAB, 5)).astype("float32")
    embedding = build_caption_model(VOCAB, FEATURES, units=8, embeddings=matrix).get_layer("embedding")
    np.testing.assert_array_equal(embedding.get_weights()[0], matrix)
    assert embedding.output_dim == 5 and not embedding.trainable
    assert build_caption_model(VOCAB, FEATURES, units=8, embeddings=matrix, train_embeddings=True).get_layer(
        "embedding").trainable
    with pytest.raises(ValueError, match="rows"):
        build_caption_model(VOCAB + 1, FEATURES, embeddings=matrix)


def test_an_ensemble_needs_decoders_of_one_architecture(model):
    with pytest.raises(ValueError, match="one architecture"):
        Decoder([model, build_caption_model(VOCAB, FEATURES, embedding_dim=8, units=20)])
