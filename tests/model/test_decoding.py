"""Greedy and beam search over toy step functions whose best captions are known."""
import itertools

import numpy as np
import pytest

from altvoice.model.decoding import (beam_search, constrained_beam_search, greedy_search, rerank, sequence_log_probs,
                                     without_repeats)
from altvoice.transforms.captions import END_ID, START_ID

X, Y, Z = 4, 5, 6  # word ids after the reserved ones


def table_step(table: dict):
    """A step function from {previous token: {next token: probability}}; the state is a dummy row array."""
    vocab = 1 + max(max(t, *row) for t, row in table.items())
    log_probs = np.full((vocab, vocab), -np.inf)
    for previous, row in table.items():
        for token, p in row.items():
            log_probs[previous, token] = np.log(p)

    def step(tokens, state):
        return log_probs[tokens], state

    return step


def rnn_step(vocab: int = 9, units: int = 5, seed: int = 0):
    """A small random RNN language model over ids 3.. (ids 0-2 impossible), with its state carried."""
    rng = np.random.default_rng(seed)
    embed, recur, out = rng.normal(size=(vocab, units)), rng.normal(size=(units, units)), rng.normal(size=(units, vocab)) * 2
    banned = np.zeros(vocab)
    banned[:3] = -np.inf

    def step(tokens, state):
        (h,) = state
        h = np.tanh(h @ recur + embed[tokens])
        logits = h @ out + banned
        return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True), (h,)

    initial = (rng.normal(size=(6, units)),)
    return step, initial


# Greedy takes X (0.55) and then wanders (0.35 a word); Y then <end> is worth 0.45 * 0.99.
TRAP = {START_ID: {X: 0.55, Y: 0.45}, X: {X: 0.35, Z: 0.35, END_ID: 0.3}, Z: {X: 0.35, Z: 0.35, END_ID: 0.3},
        Y: {END_ID: 0.99, X: 0.01}}


def test_beam_search_beats_greedy_where_the_first_choice_leads_nowhere():
    step, state = table_step(TRAP), (np.zeros((1, 1)),)
    (greedy_ids, greedy_score), = greedy_search(step, state, max_tokens=6)
    (beam_ids, beam_score), = beam_search(step, state, max_tokens=6, beam_width=2)
    assert greedy_ids[0] == X and greedy_score < np.log(0.55 * 0.3)
    assert beam_ids == [Y] and beam_score == pytest.approx(np.log(0.45 * 0.99))


@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_beam_width_one_is_greedy(alpha):
    step, state = rnn_step()
    greedy = greedy_search(step, state, max_tokens=7, alpha=alpha)
    beam = beam_search(step, state, max_tokens=7, beam_width=1, alpha=alpha)
    assert [ids for ids, _ in beam] == [ids for ids, _ in greedy]
    assert [s for _, s in beam] == pytest.approx([s for _, s in greedy])


def test_wide_beam_finds_the_exact_best_caption():
    step, state = rnn_step(vocab=6, seed=3)  # words 4 and 5 and <end>: few enough to list every caption
    found = beam_search(step, state, max_tokens=4, beam_width=64)  # wider than the number of candidates
    for row, (ids, score) in enumerate(found):
        best = max(exhaustive(step, (state[0][row : row + 1],), 4), key=lambda c: c[1])
        assert ids == best[0] and score == pytest.approx(best[1])


def exhaustive(step, state, max_tokens):
    """Every caption of at most max_tokens tokens with its log-probability."""
    for length in range(1, max_tokens + 1):
        for words in itertools.product([4, 5, END_ID], repeat=length):
            if END_ID in words[:-1] or words[0] == END_ID:  # at least one word
                continue
            tokens, total, s = [START_ID, *words], 0.0, state
            for previous, token in zip(tokens, words):
                log_probs, s = step(np.array([previous]), s)
                total += log_probs[0, token]
            if words[-1] == END_ID or length == max_tokens:
                yield [w for w in words if w != END_ID], total


def test_each_image_is_decoded_as_if_alone():
    step, state = rnn_step()
    together = beam_search(step, state, max_tokens=7, beam_width=3, alpha=0.7)
    alone = [beam_search(step, (state[0][i : i + 1],), max_tokens=7, beam_width=3, alpha=0.7)[0] for i in range(6)]
    assert [ids for ids, _ in together] == [ids for ids, _ in alone]
    assert [s for _, s in together] == pytest.approx([s for _, s in alone])


def test_length_normalisation_divides_by_length_to_the_alpha():
    # "Y <end>" and "Y X <end>" are equally likely (0.5); normalised by length, the longer one wins
    step, state = table_step({START_ID: {Y: 1.0}, Y: {END_ID: 0.5, X: 0.5}, X: {END_ID: 1.0}}), (np.zeros((1, 1)),)
    (ids, score), = beam_search(step, state, max_tokens=5, beam_width=2, alpha=1.0)
    assert ids == [Y, X] and score == pytest.approx(np.log(0.5) / 3)
    (ids, score), = greedy_search(step, state, max_tokens=5, alpha=1.0)
    assert ids == [Y] and score == pytest.approx(np.log(0.5) / 2)


def test_a_caption_has_at_least_one_word():
    step, state = table_step({START_ID: {END_ID: 0.9, X: 0.1}, X: {END_ID: 1.0}}), (np.zeros((1, 1)),)
    assert beam_search(step, state, max_tokens=3, beam_width=2)[0][0] == [X]
    assert greedy_search(step, state, max_tokens=3)[0][0] == [X]


def test_captions_stop_at_max_tokens():
    step, state = table_step({START_ID: {X: 1.0}, X: {X: 0.9, END_ID: 0.1}}), (np.zeros((2, 1)),)
    assert [ids for ids, _ in beam_search(step, state, max_tokens=3, beam_width=2)] == [[X, X, X]] * 2
    assert [ids for ids, _ in greedy_search(step, state, max_tokens=3)] == [[X, X, X]] * 2


def exhaustive_best(step, state_row, max_tokens, keep):
    """The best-scoring caption (summed log-probability) among all captions `keep` accepts, by enumeration:
    up to max_tokens - 1 words and <end>, or max_tokens words cut off there (as the searches count them)."""
    best = (None, -np.inf)
    words = range(3, step(np.array([START_ID]), state_row)[0].shape[1])
    for length in range(1, max_tokens + 1):
        for ids in itertools.product(words, repeat=length):
            if END_ID in ids or not keep(ids):
                continue
            total, state, previous = 0.0, state_row, START_ID
            for token in (*ids, END_ID)[:max_tokens]:
                log_probs, state = step(np.array([previous]), state)
                total += log_probs[0, token]
                previous = token
            if total > best[1]:
                best = (list(ids), total)
    return best


def test_constrained_search_places_the_required_word_and_never_a_banned_one():
    step, state = rnn_step(vocab=7)
    plain = beam_search(step, state, max_tokens=4, beam_width=3)
    required, banned = [[5]] * 6, [[6]] * 6
    found = constrained_beam_search(step, state, 4, 3, 0.0, required, banned)
    for (ids, score), (plain_ids, plain_score) in zip(found, plain):
        assert 5 in ids and 6 not in ids
        assert score <= plain_score + 1e-9  # a constraint can only cost probability
    for row in range(6):  # a wide beam finds the best constrained caption that enumeration finds
        row_state = (state[0][row : row + 1],)
        expected = exhaustive_best(step, row_state, 4, lambda ids: 5 in ids and 6 not in ids)
        (ids, score), = constrained_beam_search(step, row_state, 4, 40, 0.0, [[5]], [[6]])
        assert ids == expected[0] and score == pytest.approx(expected[1])


def test_constrained_search_without_a_constraint_is_beam_search_and_gives_up_when_it_cannot_place_one():
    step, state = rnn_step()
    rows = len(state[0])
    assert constrained_beam_search(step, state, 7, 3, 0.7, [[]] * rows, [[]] * rows) == \
        beam_search(step, state, max_tokens=7, beam_width=3, alpha=0.7)
    step = table_step({START_ID: {X: 1.0}, X: {X: 0.5, END_ID: 0.5}, Z: {END_ID: 1.0}})  # nothing leads to Z
    assert constrained_beam_search(step, (np.zeros((1, 1)),), 4, 2, 0.0, [[Z]], [[]]) == [None]


def test_without_repeats_says_a_content_word_once_and_function_words_freely():
    vocabulary = ["<pad>", "<unk>", "<start>", "<end>", "hat", "a", "and"]
    hat, a, and_ = 4, 5, 6  # "a hat and a hat" is the most probable caption
    step = table_step({START_ID: {a: 1.0}, a: {hat: 0.9, END_ID: 0.1}, hat: {and_: 0.6, END_ID: 0.4}, and_: {a: 1.0}})
    state = (np.zeros((2, 1)),)
    assert greedy_search(step, state, 5)[0][0] == [a, hat, and_, a, hat]
    blocked, start = without_repeats(step, vocabulary)
    assert greedy_search(blocked, start(state), 5)[0][0] == [a, hat, and_, a]  # "a" again, "hat" not
    for search in (beam_search(blocked, start(state), 5, beam_width=2),
                   constrained_beam_search(blocked, start(state), 5, 2, 0.0, [[]] * 2, [[]] * 2)):
        assert [ids for ids, _ in search] == [[a, hat]] * 2


def test_sequence_log_probs_sum_the_steps_along_each_caption_and_its_end():
    step, initial = rnn_step()
    sequences = [[3, 4], [5], [6, 7, 8, 3]]
    state = tuple(s[:3] for s in initial)
    expected = []
    for row, ids in enumerate(sequences):
        inner, tokens, total = tuple(s[row : row + 1] for s in state), [START_ID], 0.0
        for token in [*ids, END_ID]:
            log_probs, inner = step(np.array(tokens[-1:]), inner)
            total += log_probs[0, token]
            tokens.append(token)
        expected.append(total)
    np.testing.assert_allclose(sequence_log_probs(step, state, sequences, 9), expected)
    cut = sequence_log_probs(step, state, sequences, 4)  # [6, 7, 8, 3] was cut at 4 tokens: no <end> scored
    assert cut[2] > expected[2] and np.allclose(cut[:2], expected[:2])


def test_rerank_lowers_captions_that_fit_any_image():
    finished = [[(-1.0, [X, Y]), (-1.2, [Z])], [(-0.5, [Y])]]
    prior = np.array([-0.5, -9.0, -2.0])  # [X, Y] fits anything, [Z] fits little without this image
    assert rerank(finished, prior, 0.0, 0.0, 9) == [([X, Y], -1.0), ([Y], -0.5)]
    assert rerank(finished, prior, 0.1, 0.0, 9) == [([Z], -1.2), ([Y], -0.5)]  # the model's own score is kept
