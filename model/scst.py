"""Self-critical sequence training (Rennie et al., 2017) of a transformer decoder: CIDEr-D as the reward.

For each training image, beam search of width `samples` gives that many captions (the sampling of
transformer captioners since Cornia et al., 2020). A caption's reward is its CIDEr-D against
the image's training captions, with document frequencies from the training captions only; its
advantage is the reward minus a baseline: the mean reward of the image's other samples ("mean",
Luo 2020) or the reward of the image's greedy caption ("greedy", the original). The loss is
-advantage * the caption's mean log-probability per word, so captions better than the baseline become likelier. Each epoch ends with
the dev split's CIDEr-D of greedy captions; the best epoch's weights are kept.

    <output>/checkpoints/scst/state.json       epochs done, best epoch, dev CIDEr-D and seconds per epoch
    <output>/checkpoints/scst/best.weights.h5  the weights with the best dev CIDEr-D so far
    <output>/checkpoints/scst/last.weights.h5  the last epoch's (what --resume continues from)
"""
import json
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from altvoice.console import log
from altvoice.model.data import Features, read_vocabulary, split_files
from altvoice.model.decoding import beam_search, content_words, until_end, without_repeats
from altvoice.model.metrics import CiderD, cider_d
from altvoice.model.transformer import TransformerDecoder
from altvoice.records import caption_spec
from altvoice.transforms.captions import END_ID, PAD_ID, START_ID

STATE_FILE, BEST_FILE, LAST_FILE = "state.json", "best.weights.h5", "last.weights.h5"


def references(data_dir: str, split: str, summary: dict, features: Features) -> list[list[list[int]]]:
    """The word ids (no markers) of each image's captions, in the row order of `features`."""
    refs = [[] for _ in features.names]
    spec = caption_spec(summary["max_length"])
    for batch in tf.data.TFRecordDataset(split_files(data_dir, split)).batch(1024).map(
            lambda r: tf.io.parse_example(r, spec)):
        for row, ids in zip(features.rows(batch["image"]).numpy(), batch["caption_ids"].numpy()):
            refs[row].append([int(i) for i in ids if i not in (PAD_ID, START_ID, END_ID)])
    return refs


def greedy_captions(decoder: TransformerDecoder, grid: tf.Tensor, max_tokens: int,
                    content: np.ndarray | None = None) -> np.ndarray:
    """Each image's greedy caption ([N, T] ids, `<end>` then padding), decoded on the tensors (no numpy
    round trip of the cache). `content` ([V] bool): words said once at most, as decoding's without_repeats."""
    mem_k, mem_v, self_k, self_v = decoder.encode_tensors(grid)
    tokens = tf.fill([tf.shape(mem_k)[0]], START_ID)
    rows = int(tf.shape(mem_k)[0])
    done, used = np.zeros(rows, bool), np.zeros((rows, decoder.vocab_size), bool)
    out = []
    for t in range(max_tokens):
        log_probs, self_k, self_v = decoder.step_tensors(tokens, mem_k, mem_v, self_k, self_v)
        log_probs = np.where(used, -np.inf, log_probs.numpy())
        if t == 0:  # a caption has at least one word
            log_probs[:, END_ID] = -np.inf
        chosen = np.where(done, PAD_ID, log_probs.argmax(axis=1))
        if content is not None:
            used[np.arange(rows), chosen] |= content[chosen]
        out.append(chosen)
        done |= chosen == END_ID
        if done.all():
            break
        tokens = tf.constant(chosen, tf.int32)
    return np.stack(out, axis=1)


def beam_samples(step, state: tuple, count: int, max_tokens: int) -> np.ndarray:
    """Each image's `count` best captions by beam search of width `count` ([N * count, T] ids, image-major,
    `<end>` then padding): the samples of self-critical training. Sampling from a label-smoothed model's whole
    distribution draws mostly word salad (its tail is flat); the beam's captions are what decoding would
    choose between."""
    rows = []
    for finished in beam_search(step, state, max_tokens, count, 0.0, all_finished=True):
        best = [ids for _, ids in sorted(finished, key=lambda f: -f[0])[:count]]
        rows += (best * count)[:count]  # an image with fewer finished captions repeats them
    out = np.full((len(rows), max(len(r) for r in rows) + 1), PAD_ID)
    for i, ids in enumerate(rows):
        ended = [*ids, END_ID] if len(ids) < max_tokens else ids  # one cut off at max_tokens has no <end>
        out[i, : len(ended)] = ended
    return out


def advantages(rewards: np.ndarray, count: int, greedy_rewards: np.ndarray | None = None) -> np.ndarray:
    """Reward minus baseline, per sample: the mean of the image's other samples, or its greedy caption's."""
    per_image = rewards.reshape(-1, count)
    if greedy_rewards is not None:
        baseline = greedy_rewards[:, None]
    else:
        baseline = (per_image.sum(axis=1, keepdims=True) - per_image) / (count - 1)
    return (per_image - baseline).reshape(-1)


def make_train_step(model: keras.Model, optimizer):
    @tf.function(reduce_retracing=True)
    def train_step(grid, samples, advantage):
        inputs = tf.concat([tf.fill([tf.shape(samples)[0], 1], START_ID), samples[:, :-1]], axis=1)
        mask = tf.cast(tf.not_equal(samples, PAD_ID), tf.float32)
        with tf.GradientTape() as tape:
            log_probs = tf.nn.log_softmax(model([grid, inputs], training=False))
            chosen = tf.gather(log_probs, samples, batch_dims=2)
            per_word = tf.reduce_sum(chosen * mask, axis=1) / tf.reduce_sum(mask, axis=1)
            loss = -tf.reduce_mean(advantage * per_word)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    return train_step


def dev_cider(decoder: TransformerDecoder, features: Features, refs: list, max_tokens: int, content: np.ndarray,
              batch: int = 100) -> float:
    """Corpus CIDEr-D of the greedy captions of the dev images (document frequencies from their references)."""
    hyps = []
    for start in range(0, len(refs), batch):
        grid = tf.constant(features.array[start : start + batch], tf.float32)
        hyps += [until_end(row) for row in greedy_captions(decoder, grid, max_tokens, content)]
    return cider_d(hyps, refs)


def train_scst(model: keras.Model, data_dir: str, summary: dict, features: dict, directory: str, args,
               epochs: int) -> dict:
    """Runs self-critical epochs up to `epochs` (continuing from `directory`'s state; 0: none, only the best
    weights), leaves the best epoch's weights in `model` and returns the state."""
    tf.io.gfile.makedirs(directory)
    state_path = f"{directory}/{STATE_FILE}"
    if tf.io.gfile.exists(state_path):
        with tf.io.gfile.GFile(state_path) as f:
            state = json.load(f)
        model.load_weights(f"{directory}/{LAST_FILE}")
    else:
        state = {"epoch": 0, "best_epoch": 0, "best_dev_cider_d": None, "history": []}
    if state["epoch"] >= epochs:
        model.load_weights(f"{directory}/{BEST_FILE}")
        return state
    settings = {"samples": args.scst_samples, "images_per_step": args.scst_images, "baseline": args.scst_baseline,
                "learning_rate": args.scst_learning_rate}
    state.update(settings)  # this run's; each epoch's history entry keeps its own
    train_refs = references(data_dir, "train", summary, features["train"])
    dev_refs = references(data_dir, "dev", summary, features["dev"])
    scorer = CiderD(train_refs)
    decoder = TransformerDecoder(model, live=True)
    vocabulary = read_vocabulary(data_dir, summary)
    step, blocking = without_repeats(decoder.step, vocabulary)
    content = content_words(vocabulary)
    max_tokens = summary["max_length"] - 1
    if state["best_dev_cider_d"] is None:
        state["best_dev_cider_d"] = dev_cider(decoder, features["dev"], dev_refs, max_tokens, content)
        state["history"].append({"epoch": 0, "dev_cider_d": round(state["best_dev_cider_d"], 4)})
        model.save_weights(f"{directory}/{BEST_FILE}")
        log.info("self-critical training from dev CIDEr-D %.4f (greedy)", state["best_dev_cider_d"])
    optimizer = keras.optimizers.Adam(args.scst_learning_rate)
    train_step = make_train_step(model, optimizer)
    count, per_step = args.scst_samples, args.scst_images
    rows = len(train_refs)
    rng = np.random.default_rng(args.seed)
    while state["epoch"] < epochs:
        started, rewards_seen = time.time(), []
        order = rng.permutation(rows)
        with tqdm(total=rows, desc=f"self-critical epoch {state['epoch'] + 1}/{epochs}", unit=" images",
                  file=sys.stderr, disable=not sys.stderr.isatty()) as progress:
            for start in range(0, rows, per_step):
                batch = order[start : start + per_step]
                grid = tf.constant(features["train"].array[batch], tf.float32)
                samples = beam_samples(step, blocking(decoder.encode(grid.numpy())), count, max_tokens)
                images = np.repeat(batch, count)
                rewards = np.array([scorer.score(i, until_end(s)) for i, s in zip(images, samples)])
                greedy = None
                if args.scst_baseline == "greedy":
                    greedy = np.array([scorer.score(i, until_end(s)) for i, s in zip(
                        batch, greedy_captions(decoder, grid, max_tokens, content))])
                advantage = advantages(rewards, count, greedy)
                train_step(tf.repeat(grid, count, axis=0), tf.constant(samples, tf.int32),
                           tf.constant(advantage, tf.float32))
                rewards_seen.append(rewards.mean())
                progress.update(len(batch))
        dev = dev_cider(decoder, features["dev"], dev_refs, max_tokens, content)
        state["epoch"] += 1
        seconds = round(time.time() - started, 1)
        state["history"].append({"epoch": state["epoch"], "train_reward": round(float(np.mean(rewards_seen)), 4),
                                 "dev_cider_d": round(dev, 4), "seconds": seconds, **settings})
        model.save_weights(f"{directory}/{LAST_FILE}")
        if dev > state["best_dev_cider_d"]:
            state.update(best_dev_cider_d=dev, best_epoch=state["epoch"])
            model.save_weights(f"{directory}/{BEST_FILE}")
        with tf.io.gfile.GFile(state_path + ".tmp", "w") as f:
            f.write(json.dumps(state, indent=2))
        tf.io.gfile.rename(state_path + ".tmp", state_path, overwrite=True)
        log.info("self-critical epoch %d: mean reward %.3f, dev CIDEr-D %.4f (greedy), %.0f s", state["epoch"],
                 np.mean(rewards_seen), dev, seconds)
    model.load_weights(f"{directory}/{BEST_FILE}")
    return state
