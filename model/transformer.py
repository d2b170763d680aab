"""The transformer caption decoder: causal self-attention over the words, cross-attention over the image grid.

    grid [N, cells, C] -> LayerNorm -> Dense(d) --.
    mean over cells -> LayerNorm -> Dense(d) ------+-> memory [N, 1 + cells, d] (+ a learnt embedding per slot)
    tokens [N, T] -> Embedding(V, e) -> Dense(d) + position -> L x pre-norm block -> LayerNorm -> Dense(e) -> . E^T + b

    block: x += SelfAttention(LN(x), causal); x += CrossAttention(LN(x), memory); x += FFN(LN(x))

The output layer is the input embedding transposed (tied: GloVe's geometry shapes both ends) plus a bias.
Trained with teacher forcing like the merge decoder (captions padded at the end; causal attention keeps
padding out of every scored position). The maths is written once, in functions over a dict of weights:
`TransformerCaptioner` calls them on its variables for training, `TransformerDecoder` on constants to
decode one token at a time from a key/value cache, so the two cannot disagree.
"""
import math

import keras
import numpy as np
import tensorflow as tf

KIND = "transformer"
DEFAULTS = {"layers": 3, "units": 256, "heads": 8, "ff_units": 1024, "dropout": 0.1, "max_length": 40}


def layer_norm(x, gamma, beta, epsilon=1e-5):
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + epsilon) * gamma + beta


def dense(x, w, name):
    return tf.matmul(x, w[f"{name}/kernel"]) + w[f"{name}/bias"]


def attend(q, k, v, heads: int, causal: bool = False):
    """Multi-head attention of q [N, Tq, d] over k, v [N, Tk, d]; with `causal` query i sees keys 0..i."""
    n, d = tf.shape(q)[0], q.shape[-1]

    def split(x):  # [N, T, d] -> [N, heads, T, d / heads]
        return tf.transpose(tf.reshape(x, [n, -1, heads, d // heads]), [0, 2, 1, 3])

    scores = tf.matmul(split(q), split(k), transpose_b=True) / math.sqrt(d // heads)
    if causal:
        length = tf.shape(q)[1]
        scores += (1.0 - tf.linalg.band_part(tf.ones([length, length]), -1, 0)) * -1e9
    out = tf.transpose(tf.matmul(tf.nn.softmax(scores), split(v)), [0, 2, 1, 3])
    return tf.reshape(out, [n, -1, d])


def memory(w, grid):
    """The cross-attention memory [N, 1 + cells, d]: the pooled vector, then each grid cell."""
    pooled = tf.reduce_mean(grid, axis=1, keepdims=True)
    cells = dense(layer_norm(grid, w["grid_norm/gamma"], w["grid_norm/beta"]), w, "grid")
    pooled = dense(layer_norm(pooled, w["pooled_norm/gamma"], w["pooled_norm/beta"]), w, "pooled")
    return tf.concat([pooled, cells], axis=1) + w["memory_position"]


def memory_keys(w, mem, config: dict) -> list:
    """Each layer's cross-attention keys and values of a memory: [(k, v)] * layers."""
    return [(dense(mem, w, f"block{i}/cross_k"), dense(mem, w, f"block{i}/cross_v")) for i in range(config["layers"])]


def embed(w, tokens, start: int | tf.Tensor = 0):
    """Token embeddings projected to d plus positions start, start + 1, ...: [N, T, d]."""
    x = dense(tf.gather(w["embedding"], tokens), w, "input")
    return x + w["position"][start : start + tf.shape(tokens)[1]]


def block(w, i: int, x, cross: tuple, config: dict, self_kv=None, dropout=lambda x: x):
    """One decoder block. Without `self_kv` x is the whole prefix (causal); with it, x is one new position
    and self_kv the keys and values of the earlier ones. Returns (x, this position's (k, v) appended)."""
    p, heads = f"block{i}/", config["heads"]
    h = layer_norm(x, w[p + "norm1/gamma"], w[p + "norm1/beta"])
    k, v = dense(h, w, p + "self_k"), dense(h, w, p + "self_v")
    if self_kv is not None:
        k, v = tf.concat([self_kv[0], k], axis=1), tf.concat([self_kv[1], v], axis=1)
    x += dropout(dense(attend(dense(h, w, p + "self_q"), k, v, heads, causal=self_kv is None), w, p + "self_o"))
    h = layer_norm(x, w[p + "norm2/gamma"], w[p + "norm2/beta"])
    x += dropout(dense(attend(dense(h, w, p + "cross_q"), *cross, heads), w, p + "cross_o"))
    h = layer_norm(x, w[p + "norm3/gamma"], w[p + "norm3/beta"])
    x += dropout(dense(tf.nn.gelu(dense(h, w, p + "ff1")), w, p + "ff2"))
    return x, (k, v)


def logits(w, x):
    """Tied output layer: [N, T, d] -> [N, T, V]."""
    x = dense(layer_norm(x, w["final_norm/gamma"], w["final_norm/beta"]), w, "output")
    return tf.matmul(x, w["embedding"], transpose_b=True) + w["output_bias"]


def weight_shapes(config: dict) -> dict:
    """{weight name: shape} of a transformer decoder."""
    d, e, ff, c = config["units"], config["embedding_dim"], config["ff_units"], config["feature_size"]
    shapes = {"grid_norm/gamma": (c,), "grid_norm/beta": (c,), "grid/kernel": (c, d), "grid/bias": (d,),
              "pooled_norm/gamma": (c,), "pooled_norm/beta": (c,), "pooled/kernel": (c, d), "pooled/bias": (d,),
              "memory_position": (config["cells"] + 1, d), "embedding": (config["vocab_size"], e),
              "input/kernel": (e, d), "input/bias": (d,), "position": (config["max_length"], d),
              "final_norm/gamma": (d,), "final_norm/beta": (d,), "output/kernel": (d, e), "output/bias": (e,),
              "output_bias": (config["vocab_size"],)}
    for i in range(config["layers"]):
        p = f"block{i}/"
        for norm in ("norm1", "norm2", "norm3"):
            shapes.update({p + norm + "/gamma": (d,), p + norm + "/beta": (d,)})
        for name in ("self_q", "self_k", "self_v", "self_o", "cross_q", "cross_k", "cross_v", "cross_o"):
            shapes.update({p + name + "/kernel": (d, d), p + name + "/bias": (d,)})
        shapes.update({p + "ff1/kernel": (d, ff), p + "ff1/bias": (ff,), p + "ff2/kernel": (ff, d), p + "ff2/bias": (d,)})
    return shapes


@keras.saving.register_keras_serializable("altvoice")
class TransformerCaptioner(keras.layers.Layer):
    """The decoder's weights, and its teacher-forced forward pass: (grid, tokens) -> logits."""

    def __init__(self, config: dict, **kwargs):
        super().__init__(**kwargs)
        self.config = dict(config)
        self.train_embeddings = config.get("train_embeddings", True)
        self.w = {}
        for name, shape in weight_shapes(self.config).items():
            initializer = ("ones" if name.endswith("gamma") else "zeros" if name.endswith(("beta", "bias"))
                           else keras.initializers.TruncatedNormal(stddev=0.02))
            self.w[name] = self.add_weight(shape=shape, initializer=initializer, name=name.replace("/", "_"),
                                           trainable=name != "embedding" or self.train_embeddings)

    def call(self, grid, tokens, training=False):
        rate = self.config["dropout"] if training else 0.0
        dropout = (lambda x: tf.nn.dropout(x, rate)) if rate else (lambda x: x)
        w, config = self.w, self.config
        mem = dropout(memory(w, grid))
        x = dropout(embed(w, tokens))
        for i, cross in enumerate(memory_keys(w, mem, config)):
            x, _ = block(w, i, x, cross, config, dropout=dropout)
        return logits(w, x)

    def get_config(self):
        return {**super().get_config(), "config": self.config}


def build_transformer_model(vocab_size: int, feature_size: int, cells: int, embeddings: np.ndarray | None = None,
                            embedding_dim: int = 200, train_embeddings: bool = True, **sizes) -> keras.Model:
    """[grid [N, cells, feature_size], tokens [N, T]] -> next-token logits [N, T, vocab_size]."""
    if embeddings is not None:
        if embeddings.shape[0] != vocab_size:
            raise ValueError(f"embedding matrix has {embeddings.shape[0]} rows for a vocabulary of {vocab_size}")
        embedding_dim = embeddings.shape[1]
    config = {"kind": KIND, "vocab_size": vocab_size, "feature_size": feature_size, "cells": cells,
              "embedding_dim": embedding_dim, "train_embeddings": train_embeddings,
              **DEFAULTS, **{k: v for k, v in sizes.items() if v is not None}}
    if config["units"] % config["heads"]:
        raise ValueError(f"units ({config['units']}) must be a multiple of heads ({config['heads']})")
    grid = keras.Input((cells, feature_size), name="grid")
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    layer = TransformerCaptioner(config, name="transformer")
    model = keras.Model([grid, tokens], layer(grid, tokens), name="transformer_captioner")
    if embeddings is not None:
        layer.w["embedding"].assign(embeddings.astype(np.float32))
    return model


def transformer_config(model: keras.Model) -> dict:
    return dict(model.get_layer("transformer").config)


def weights_of(model: keras.Model) -> dict:
    """{weight name: numpy array} of a transformer captioner."""
    return {name: np.asarray(v) for name, v in model.get_layer("transformer").w.items()}


class TransformerDecoder:
    """`encode(grid)` once per image, then `step(tokens, state)` per token, with a key/value cache.

    The cache (the memory's keys and values, [images, layers, 1 + cells, d] each, computed once per image,
    and the earlier positions' self-attention keys and values, [rows, layers, t, d] each) stays in
    TensorFlow tensors. The state holds, for each row, a reference to them, its image and its row in the
    self-attention cache: every item has the row first, so beam search reorders it like the LSTM's state,
    and no step copies the cache out of TensorFlow. Each step runs one position through the blocks,
    attending to the cache: O(t) work per token, not a rerun of the prefix.
    """

    def __init__(self, model: keras.Model, live: bool = False):
        """`live`: decode with the model's variables as they change (self-critical training samples from the
        model it trains); otherwise with a copy of its weights as constants."""
        from altvoice.model.decoder import BANNED_IDS

        config = transformer_config(model)
        self.config, self.vocab_size = config, config["vocab_size"]
        w = (dict(model.get_layer("transformer").w) if live
             else {name: tf.constant(value) for name, value in weights_of(model).items()})
        banned = np.zeros(self.vocab_size, np.float32)
        banned[list(BANNED_IDS)] = -np.inf
        layers, d = config["layers"], config["units"]
        cache = tf.TensorSpec([None, layers, None, d], tf.float32)

        @tf.function(input_signature=[tf.TensorSpec([None, config["cells"], config["feature_size"]], tf.float32)])
        def encode(grid):
            keys = memory_keys(w, memory(w, grid), config)
            k, v = tf.stack([k for k, _ in keys], axis=1), tf.stack([v for _, v in keys], axis=1)
            empty = tf.zeros([tf.shape(grid)[0], layers, 0, d])
            return k, v, empty, empty

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), cache, cache, cache, cache])
        def step(tokens, mem_k, mem_v, self_k, self_v):
            x = embed(w, tokens[:, None], tf.shape(self_k)[2])
            new_k, new_v = [], []
            for i in range(layers):
                x, (k, v) = block(w, i, x, (mem_k[:, i], mem_v[:, i]), config, (self_k[:, i], self_v[:, i]))
                new_k.append(k)
                new_v.append(v)
            return tf.nn.log_softmax(logits(w, x)[:, 0] + banned), tf.stack(new_k, 1), tf.stack(new_v, 1)

        index = tf.TensorSpec([None], tf.int64)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), index, index, cache, cache, cache, cache])
        def step_rows(tokens, images, rows, mem_k, mem_v, self_k, self_v):
            return step(tokens, tf.gather(mem_k, images), tf.gather(mem_v, images), tf.gather(self_k, rows),
                        tf.gather(self_v, rows))

        self.encode_tensors, self.step_tensors, self._step_rows = encode, step, step_rows

    def encode(self, grid: np.ndarray) -> tuple:
        """The initial decoding state of each image."""
        tensors = self.encode_tensors(np.asarray(grid, np.float32))
        return _references(tensors, len(grid)), np.arange(len(grid)), np.arange(len(grid))

    def step(self, tokens: np.ndarray, state: tuple) -> tuple[np.ndarray, tuple]:
        """(previous tokens [N], state) -> (log-probabilities of the next token [N, V], new state)."""
        references, images, rows = state
        mem_k, mem_v, self_k, self_v = references[0]  # every row of a state points to the same tensors
        log_probs, self_k, self_v = self._step_rows(np.asarray(tokens, np.int32), images, rows, mem_k, mem_v,
                                                    self_k, self_v)
        return log_probs.numpy(), (_references((mem_k, mem_v, self_k, self_v), len(tokens)), images,
                                   np.arange(len(tokens)))


def _references(tensors: tuple, rows: int) -> np.ndarray:
    """An object array of `rows` references to the same tuple of tensors."""
    references = np.empty(rows, object)
    references[:] = [tensors] * rows
    return references
