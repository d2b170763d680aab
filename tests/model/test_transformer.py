"""The transformer decoder: decoding a token at a time from the key/value cache gives what the teacher-forced
model computes over the whole prefix, the output layer is the input embedding, and smoothing is the plain
loss at zero."""
import keras
import numpy as np
import pytest

from altvoice.model.decoder import BANNED_IDS
from altvoice.model.decoding import constrained_beam_search
from altvoice.model.decoders import build_decoder, decoder_config, make_decoder
from altvoice.model.objectives import SmoothedCrossEntropy, WarmupSchedule
from altvoice.model.transformer import TransformerDecoder, build_transformer_model, weights_of
from altvoice.transforms.captions import PAD_ID
from tests.model.test_decoder import VOCAB, captions

FEATURES, CELLS = 12, 4


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    glove = np.random.default_rng(0).normal(size=(VOCAB, 8)).astype("float32")
    model = build_transformer_model(VOCAB, FEATURES, CELLS, glove, layers=2, units=16, heads=4, ff_units=32,
                                    dropout=0.1, max_length=12)
    weights = weights_of(model)  # untrained biases and norms are trivial: make every weight count
    rng = np.random.default_rng(1)
    for variable, (name, value) in zip(model.get_layer("transformer").w.values(), weights.items()):
        variable.assign(value + rng.normal(0, 0.2, value.shape).astype("float32") * (name != "embedding"))
    return model


def test_step_by_step_decoding_matches_the_full_sequence(model):
    rng = np.random.default_rng(2)
    grid, ids = rng.normal(size=(3, CELLS, FEATURES)).astype("float32"), captions(rng, 3)
    logits = model.predict_on_batch([grid, ids[:, :-1]]).astype(np.float64)
    logits[:, :, list(BANNED_IDS)] = -np.inf
    expected = logits - np.logaddexp.reduce(logits, axis=2, keepdims=True)
    decoder, allowed = TransformerDecoder(model), [i for i in range(VOCAB) if i not in BANNED_IDS]
    state = decoder.encode(grid)
    assert state[0][0][2].shape == (3, 2, 0, 16) and list(state[1]) == [0, 1, 2]
    for t in range(ids.shape[1] - 1):
        log_probs, state = decoder.step(ids[:, t], state)
        assert state[0][0][2].shape == (3, 2, t + 1, 16)
        assert np.isneginf(log_probs[:, list(BANNED_IDS)]).all()
        np.testing.assert_allclose(log_probs[:, allowed], expected[:, t, allowed], atol=1e-4)


def test_a_later_word_never_changes_an_earlier_prediction(model):
    rng = np.random.default_rng(4)
    grid, ids = rng.normal(size=(1, CELLS, FEATURES)).astype("float32"), captions(rng, 1)
    changed = ids.copy()
    changed[0, 5:] = (changed[0, 5:] + 1) % VOCAB
    before, after = (model.predict_on_batch([grid, x]) for x in (ids, changed))
    np.testing.assert_allclose(before[:, :5], after[:, :5], atol=1e-5)
    assert not np.allclose(before[:, 5:], after[:, 5:])


def test_output_layer_is_the_glove_initialised_input_embedding(model):
    weights = weights_of(model)
    assert "logits/kernel" not in weights and weights["embedding"].shape == (VOCAB, 8)
    assert weights["output/kernel"].shape == (16, 8)  # the model's width back to the embedding's


def test_config_rebuilds_the_model_and_dispatches_the_decoder(model):
    config = decoder_config(model)
    assert config["kind"] == "transformer" and config["cells"] == CELLS
    rebuilt = build_decoder(config)
    rebuilt.set_weights(model.get_weights())
    rng = np.random.default_rng(5)
    grid, ids = rng.normal(size=(2, CELLS, FEATURES)).astype("float32"), captions(rng, 2)
    np.testing.assert_allclose(rebuilt.predict_on_batch([grid, ids]), model.predict_on_batch([grid, ids]), atol=1e-5)
    assert isinstance(make_decoder([model]), TransformerDecoder)
    with pytest.raises(ValueError, match="ensembles are of merge decoders"):
        make_decoder([model, rebuilt])


def test_units_must_split_evenly_into_heads():
    with pytest.raises(ValueError, match="multiple of heads"):
        build_transformer_model(VOCAB, FEATURES, CELLS, units=18, heads=4)


def test_label_smoothing_zero_is_the_padding_masked_cross_entropy():
    rng = np.random.default_rng(6)
    targets = captions(rng, 4)[:, 1:]
    logits = rng.normal(size=(*targets.shape, VOCAB)).astype("float32")
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID)(targets, logits)
    assert float(SmoothedCrossEntropy(0.0)(targets, logits)) == pytest.approx(float(plain), rel=1e-5)
    assert float(SmoothedCrossEntropy(0.1)(targets, logits)) > float(plain) * 0.9


def test_warmup_rises_linearly_then_falls_as_inverse_square_root():
    schedule = WarmupSchedule(1e-3, 100)
    rates = [float(schedule(step - 1)) for step in (1, 50, 100, 400)]
    assert rates == pytest.approx([1e-5, 5e-4, 1e-3, 5e-4])


def test_constrained_search_carries_the_cache_like_any_state(model):
    grid = np.random.default_rng(8).normal(size=(2, CELLS, FEATURES)).astype("float32")
    decoder = TransformerDecoder(model)
    found = constrained_beam_search(decoder.step, decoder.encode(grid), 8, 2, 0.0, [[7], [9, 10]], [[5], []])
    for (ids, score), required, banned in zip(found, ([7], [9, 10]), ([5], [])):
        assert set(ids) & set(required) and not set(ids) & set(banned) and np.isfinite(score)
