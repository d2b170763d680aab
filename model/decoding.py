"""Batched caption search over a step function: greedy and beam search, many images at once.

A step function maps (previous tokens [R], state) -> (log-probabilities [R, V], new state), where
the state is a tuple of arrays whose first axis is the row (see `model.decoder.Decoder`).
A caption's score is its summed log-probability (`<end>` included) divided by length**alpha,
length counting `<end>`; alpha=0 is the plain log-probability. A caption has at least one word:
`<end>` is never the first token. `without_repeats` wraps a step function so that a content word
appears at most once ("a man wearing a hat and a hat", "a white and white dog" can't be written).
"""
from typing import Callable

import numpy as np
import tensorflow as tf

from altvoice.transforms.captions import END_ID, START_ID

DEFAULT_ALPHA = 0.9  # length normalisation of exported captioners unless --alpha says otherwise
Step = Callable[[np.ndarray, tuple], tuple[np.ndarray, tuple]]
# words a caption may use more than once; any other word made of letters is said once at most
FUNCTION_WORDS = frozenset(
    "a an the and or but of in on at to into onto through from for by with without over under up down off out "
    "near next front back behind beside between while as its his her their them they it he she is are be being "
    "one two three four some another other each".split())


def content_words(vocabulary: list[str]) -> np.ndarray:
    """[V] bool: the words a caption says once at most (made of letters, not a function word)."""
    return np.array([word.isalpha() and word not in FUNCTION_WORDS for word in vocabulary])


def without_repeats(step: Step, vocabulary: list[str]) -> tuple[Step, Callable[[tuple], tuple]]:
    """(a step function that gives -inf to a content word the row has already used, a function that
    adds the rows' used-word flags [R, V] to an initial state). The flags travel as the state's last
    array, so every search reorders them with its beams."""
    content = content_words(vocabulary)

    def blocked(tokens, state):
        log_probs, inner = step(tokens, state[:-1])
        used = state[-1].copy()
        rows = np.arange(len(tokens))
        used[rows, tokens] |= content[tokens]
        return np.where(used, -np.inf, log_probs), (*inner, used)

    def start(state: tuple) -> tuple:
        return (*state, np.zeros((len(state[0]), len(vocabulary)), bool))

    return blocked, start


def normalise(log_prob, length, alpha: float):
    return log_prob / np.power(length, alpha)


def greedy_search(step: Step, state: tuple, max_tokens: int, alpha: float = 0.0) -> list[tuple[list[int], float]]:
    """Most likely token at each step; returns (word ids without `<end>`, score) per row of `state`."""
    rows = len(state[0])
    tokens = np.full(rows, START_ID)
    ids, total = np.zeros((rows, 0), np.int64), np.zeros(rows)
    length, done = np.zeros(rows, np.int64), np.zeros(rows, bool)
    for t in range(1, max_tokens + 1):
        log_probs, state = _step(step, tokens, state, t)
        tokens = log_probs.argmax(axis=1)
        total += np.where(done, 0.0, log_probs[np.arange(rows), tokens])
        length += ~done
        ids = np.concatenate([ids, np.where(done, END_ID, tokens)[:, None]], axis=1)
        done |= tokens == END_ID
        if done.all():
            break
    return [(until_end(row), float(normalise(t, n, alpha))) for row, t, n in zip(ids, total, length)]


def beam_search(step: Step, state: tuple, max_tokens: int, beam_width: int = 3,
                alpha: float = 0.0, all_finished: bool = False) -> list:
    """Beam search for each row of `state`; returns its best (word ids without `<end>`, score).

    Each step expands every live beam, ranks the candidates by summed log-probability, and
    moves a candidate ending in `<end>` to the finished list when it ranks within the beam
    width (so width 1 is greedy). An image stops once it has `beam_width` finished captions;
    after `max_tokens` tokens the live beams count as finished. Finished images leave the batch.
    With `all_finished`, each row gives all its finished captions instead: [(normalised score, ids)].
    """
    width = beam_width
    items = np.arange(len(state[0]))  # the image of each live group of `width` rows
    state = tuple(np.repeat(s, width, axis=0) for s in state)
    tokens = np.full(len(items) * width, START_ID)
    scores = np.tile(np.r_[0.0, np.full(width - 1, -np.inf)], (len(items), 1))  # one live beam at first
    seqs = np.zeros((len(items), width, 0), np.int64)
    finished = [[] for _ in items]  # (normalised score, ids) per image
    for t in range(1, max_tokens + 1):
        log_probs, state = _step(step, tokens, state, t)
        vocab = log_probs.shape[1]
        candidates = (scores[:, :, None] + log_probs.reshape(len(items), width, vocab)).reshape(len(items), -1)
        top = _top(candidates, 2 * width)
        top_scores = np.take_along_axis(candidates, top, axis=1)
        parents, words = top // vocab, top % vocab
        keep = np.zeros((len(items), width), np.int64)
        done = np.zeros(len(items), bool)
        for i, item in enumerate(items):
            live = []
            for rank, (parent, word, score) in enumerate(zip(parents[i].tolist(), words[i].tolist(),
                                                             top_scores[i].tolist())):
                if score == -np.inf:
                    continue
                if word == END_ID:
                    if rank < width:
                        finished[item].append((normalise(score, t, alpha), seqs[i, parent].tolist()))
                elif len(live) < width:
                    live.append(rank)
            if t == max_tokens:
                for rank in live:
                    finished[item].append((normalise(top_scores[i, rank], t, alpha),
                                           seqs[i, parents[i, rank]].tolist() + [int(words[i, rank])]))
            done[i] = len(finished[item]) >= width or t == max_tokens or not live
            live += [live[-1] if live else 0] * (width - len(live))  # padding, masked out below
            keep[i] = live
        scores = np.take_along_axis(top_scores, keep, axis=1)
        scores[:, 1:][keep[:, 1:] == keep[:, :-1]] = -np.inf
        chosen_parents = np.take_along_axis(parents, keep, axis=1)
        chosen_words = np.take_along_axis(words, keep, axis=1)
        seqs = np.concatenate([np.take_along_axis(seqs, chosen_parents[:, :, None], axis=1),
                               chosen_words[:, :, None]], axis=2)
        if done.all():
            break
        rows = ((np.arange(len(items)) * width)[:, None] + chosen_parents)[~done].reshape(-1)
        state = tuple(s[rows] for s in state)
        tokens = chosen_words[~done].reshape(-1)
        items, scores, seqs = items[~done], scores[~done], seqs[~done]
    return finished if all_finished else [_best(f) for f in finished]


def sequence_log_probs(step: Step, state: tuple, sequences: list[list[int]], max_tokens: int) -> np.ndarray:
    """Summed log-probability of each word-id sequence followed by `<end>` (none after one cut off at
    `max_tokens`, as beam search scores it), row i of `state` scoring sequence i, teacher-forced."""
    ended = [[*ids, END_ID] if len(ids) < max_tokens else ids for ids in sequences]
    rows, longest = len(ended), max(len(s) for s in ended)
    targets = np.full((rows, longest), -1)
    for i, ids in enumerate(ended):
        targets[i, : len(ids)] = ids
    tokens, total = np.full(rows, START_ID), np.zeros(rows)
    for t in range(longest):
        log_probs, state = step(tokens, state)
        live = targets[:, t] >= 0
        total[live] += log_probs[np.flatnonzero(live), targets[live, t]]
        tokens = np.where(live, targets[:, t], END_ID)
    return total


def rerank(finished: list, prior: np.ndarray, weight: float, alpha: float,
           max_tokens: int) -> list[tuple[list[int], float]]:
    """The best caption of each row's candidates ([(normalised score, ids)]) once each score is lowered by
    `weight` times the caption's log-probability given no particular image (`prior`, one per candidate in
    order, length-normalised like the score): captions that fit any photo lose to ones that fit this one."""
    best, at = [], 0
    for row in finished:
        scored = [(score - weight * normalise(p, min(len(ids) + 1, max_tokens), alpha), score, ids)
                  for (score, ids), p in zip(row, prior[at : at + len(row)])]
        at += len(row)
        _, score, ids = max(scored, key=lambda c: c[0])
        best.append(([int(i) for i in ids], float(score)))
    return best


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's k best scores, best first, the lower index first on a tie (tf.math.top_k's
    order; many times faster than numpy's partition here)."""
    return tf.math.top_k(scores, min(k, scores.shape[1])).indices.numpy()


def _step(step: Step, tokens, state, t: int):
    log_probs, state = step(tokens, state)
    if t == 1:
        log_probs = log_probs.copy()
        log_probs[:, END_ID] = -np.inf
    return log_probs, state


def _best(finished: list) -> tuple[list[int], float]:
    score, ids = max(finished, key=lambda f: f[0])
    return [int(i) for i in ids], float(score)


def until_end(ids) -> list[int]:
    """A row of word ids up to its `<end>`."""
    ids = list(ids)
    return [int(i) for i in (ids[: ids.index(END_ID)] if END_ID in ids else ids)]


def constrained_beam_search(step: Step, state: tuple, max_tokens: int, beam_width: int, alpha: float,
                            required: list, banned: list) -> list[tuple[list[int], float] | None]:
    """Beam search in which row i's caption contains one of the word ids `required[i]` (when not empty)
    and none of `banned[i]`: lexically constrained beam search (Anderson et al., 2017) with one
    disjunctive constraint, so two banks of `beam_width` beams per image, the constraint met or not
    yet. Only met beams finish; a row whose constraint found no place within `max_tokens` gives None.
    """
    width, rows = beam_width, len(state[0])
    hyps = [(i, not required[i], 0.0, []) for i in range(rows)]  # (image, met, summed log-prob, ids)
    tokens = np.full(rows, START_ID)
    finished = [[] for _ in range(rows)]
    for t in range(1, max_tokens + 1):
        log_probs, state = _step(step, tokens, state, t)
        log_probs = log_probs.copy()
        for row, (image, *_rest) in enumerate(hyps):
            log_probs[row, list(banned[image])] = -np.inf
        top = _top(log_probs, 2 * width)
        banks = {}  # (image, met) -> [(summed log-prob, parent row, word)]
        for row, (image, met, score, _) in enumerate(hyps):
            words = set(top[row].tolist()) | (set() if met else set(required[image]))
            for word in words:
                log_prob = log_probs[row, word]
                if log_prob == -np.inf or (word == END_ID and not met):
                    continue
                banks.setdefault((image, met or word in required[image]), []).append((score + log_prob, row, word))
        next_hyps, parents = [], []
        for (image, met), candidates in sorted(banks.items()):
            if len(finished[image]) >= width:
                continue
            for score, row, word in sorted(candidates, key=lambda c: -c[0])[:width]:
                ids = hyps[row][3]
                if word == END_ID:
                    finished[image].append((normalise(score, t, alpha), ids))
                elif met and t == max_tokens:
                    finished[image].append((normalise(score, t, alpha), ids + [word]))
                else:
                    next_hyps.append((image, met, score, ids + [word]))
                    parents.append(row)
        hyps = [h for h in next_hyps if len(finished[h[0]]) < width]
        parents = [p for p, h in zip(parents, next_hyps) if len(finished[h[0]]) < width]
        if not hyps:
            break
        state = tuple(s[parents] for s in state)
        tokens = np.array([h[3][-1] for h in hyps])
    return [_best(f) if f else None for f in finished]
