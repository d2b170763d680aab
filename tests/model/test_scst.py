"""Self-critical training's pieces: the baselines, the beam's captions as samples, greedy captions on tensors."""
import numpy as np
import tensorflow as tf

from altvoice.model.decoding import greedy_search, until_end
from altvoice.model.scst import advantages, beam_samples, greedy_captions
from altvoice.model.transformer import TransformerDecoder
from altvoice.transforms.captions import END_ID, PAD_ID
from tests.model.test_decoding import rnn_step
from tests.model.test_transformer import CELLS, FEATURES, model  # noqa: F401  (the fixture)


def test_the_mean_baseline_is_the_other_samples_mean_and_greedy_is_the_greedy_reward():
    rewards = np.array([1.0, 2.0, 3.0, 0.0, 0.0, 3.0])
    np.testing.assert_allclose(advantages(rewards, 3), [-1.5, 0.0, 1.5, -1.5, -1.5, 3.0])
    np.testing.assert_allclose(advantages(rewards, 3, np.array([2.0, 1.0])), [-1, 0, 1, -1, -1, 2])


def test_beam_samples_are_each_images_best_distinct_captions_ended_and_padded():
    step, initial = rnn_step()
    samples = beam_samples(step, tuple(s[:2] for s in initial), 3, 6)
    assert samples.shape[0] == 6
    for image in range(2):
        rows = [tuple(until_end(r)) for r in samples[image * 3 : image * 3 + 3]]
        assert len(set(rows)) == 3 and all(rows)
    for row in samples:
        ids = list(row)
        if END_ID in ids:
            assert all(i == PAD_ID for i in ids[ids.index(END_ID) + 1 :])


def test_greedy_captions_on_tensors_match_the_numpy_decoder(model):  # noqa: F811
    grid = np.random.default_rng(7).normal(size=(3, CELLS, FEATURES)).astype("float32")
    decoder = TransformerDecoder(model, live=True)
    on_tensors = greedy_captions(decoder, tf.constant(grid), 8)
    expected = [ids for ids, _ in greedy_search(decoder.step, decoder.encode(grid), 8)]
    assert [until_end(row) for row in on_tensors] == expected
