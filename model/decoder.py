"""The "merge" caption decoder, and the one-token step it is decoded with.

    features -> Dropout -> Dense(units, relu) ------------------------------.
    tokens -> Embedding -> Dropout -> LSTM(units, sequences) -> Add -> Dense(units, relu) -> Dense(vocab)

Trained with teacher forcing: tokens are caption_ids[:, :-1] and position t is scored against
caption_ids[:, t + 1], all positions in one pass. Captions are padded at the end and the LSTM runs
forwards, so padding never changes a scored output (the loss skips padding targets): no mask is
needed. The last layer gives logits; the softmax is in the loss and in `Decoder.step`.
"""
import keras
import numpy as np
import tensorflow as tf

from altvoice.transforms.captions import PAD_ID, START_ID, UNK_ID

BANNED_IDS = (PAD_ID, UNK_ID, START_ID)  # never generated


def build_caption_model(vocab_size: int, feature_size: int, embedding_dim: int = 200, units: int = 256,
                        image_dropout: float = 0.5, text_dropout: float = 0.5, embeddings: np.ndarray | None = None,
                        train_embeddings: bool = False) -> keras.Model:
    """[features [N, feature_size], tokens [N, T]] -> next-token logits [N, T, vocab_size].

    `embeddings` ([vocab_size, dim], e.g. GloVe) initialises the embedding, frozen unless
    `train_embeddings`; without it the embedding is learnt from random.
    """
    if embeddings is not None:
        if embeddings.shape[0] != vocab_size:
            raise ValueError(f"embedding matrix has {embeddings.shape[0]} rows for a vocabulary of {vocab_size}")
        embedding_dim = embeddings.shape[1]
    features = keras.Input((feature_size,), name="features")
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    image = keras.layers.Dropout(image_dropout, name="image_dropout")(features)
    image = keras.layers.Dense(units, activation="relu", name="image")(image)
    embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding",
                                       trainable=embeddings is None or train_embeddings)
    text = keras.layers.Dropout(text_dropout, name="text_dropout")(embedding(tokens))
    text, _, _ = keras.layers.LSTM(units, return_sequences=True, return_state=True, name="lstm")(text)
    merged = keras.layers.Add(name="merge")([keras.layers.Reshape((1, units), name="per_step")(image), text])
    hidden = keras.layers.Dense(units, activation="relu", name="hidden")(merged)
    logits = keras.layers.Dense(vocab_size, name="logits")(hidden)
    model = keras.Model([features, tokens], logits, name="merge_captioner")
    if embeddings is not None:
        embedding.set_weights([embeddings.astype(np.float32)])
    return model


def model_config(model: keras.Model) -> dict:
    """The arguments that rebuild `model`'s architecture with `build_caption_model`."""
    embedding = model.get_layer("embedding")
    return {
        "vocab_size": embedding.input_dim,
        "feature_size": model.get_layer("image").kernel.shape[0],
        "embedding_dim": embedding.output_dim,
        "units": model.get_layer("lstm").units,
        "image_dropout": model.get_layer("image_dropout").rate,
        "text_dropout": model.get_layer("text_dropout").rate,
    }


def architecture(config: dict) -> dict:
    """A `model_config` without the dropout rates: what decoders must share to decode together."""
    return {k: v for k, v in config.items() if not k.endswith("dropout")}


def prefix_model(model: keras.Model) -> keras.Model:
    """The seed's per-prefix view of `model`, sharing its weights: [features, padded prefix] -> logits [N, V].

    Each (prefix, next word) pair is one sample, its prefix padded at the end; the prediction is
    the one after the prefix's last real token.
    """
    features = keras.Input((model.get_layer("image").kernel.shape[0],), name="features")
    prefix = keras.Input((None,), dtype="int32", name="prefix")
    image = model.get_layer("image")(model.get_layer("image_dropout")(features))
    text = model.get_layer("text_dropout")(model.get_layer("embedding")(prefix))
    outputs, _, _ = model.get_layer("lstm")(text)
    last = keras.ops.sum(keras.ops.cast(keras.ops.not_equal(prefix, PAD_ID), "int32"), axis=1) - 1
    text = keras.ops.take_along_axis(outputs, last[:, None, None], axis=1)[:, 0]
    hidden = model.get_layer("hidden")(model.get_layer("merge")([image, text]))
    return keras.Model([features, prefix], model.get_layer("logits")(hidden), name="prefix_captioner")


class Decoder:
    """Compiled pieces for decoding: `encode(features)` once per image, then `step(tokens, state)` per token.

    Given several models of one architecture (an ensemble), the next-token distribution is their
    normalised geometric mean: the mean of their log-probabilities, renormalised. The state is
    (image vectors, h, c), each [N, models, units]; the LSTMs are advanced one token at a time,
    never re-run over the prefix. The models' weights are stacked and the step is written in plain
    TensorFlow ops (the LSTM cell's equations, every decoder in one batched matmul per layer): the
    same numbers as the keras layers, traced once in a fraction of the time, with less work a step.
    """

    def __init__(self, models: keras.Model | list[keras.Model]):
        models = models if isinstance(models, (list, tuple)) else [models]
        configs = [architecture(model_config(m)) for m in models]
        if any(c != configs[0] for c in configs):
            raise ValueError(f"an ensemble's decoders must have one architecture, got {configs}")
        self.vocab_size, self.units = configs[0]["vocab_size"], configs[0]["units"]
        for model in models:
            cell = model.get_layer("lstm").cell
            if (cell.activation, cell.recurrent_activation) != (keras.activations.tanh, keras.activations.sigmoid):
                raise ValueError("the step is written for an LSTM with tanh and sigmoid activations")
        weights = {name: tf.constant(np.stack([np.asarray(w) for w in ws])) for name, ws in (
            ("image", [m.get_layer("image").kernel for m in models]),
            ("image_bias", [m.get_layer("image").bias for m in models]),
            ("embedding", [m.get_layer("embedding").embeddings for m in models]),
            ("kernel", [m.get_layer("lstm").cell.kernel for m in models]),
            ("recurrent", [m.get_layer("lstm").cell.recurrent_kernel for m in models]),
            ("lstm_bias", [m.get_layer("lstm").cell.bias for m in models]),
            ("hidden", [m.get_layer("hidden").kernel for m in models]),
            ("hidden_bias", [m.get_layer("hidden").bias for m in models]),
            ("logits", [m.get_layer("logits").kernel for m in models]),
            ("logits_bias", [m.get_layer("logits").bias for m in models]))}
        banned = np.zeros(self.vocab_size, np.float32)
        banned[list(BANNED_IDS)] = -np.inf
        vectors = tf.TensorSpec([None, len(models), self.units], tf.float32)

        @tf.function(input_signature=[tf.TensorSpec([None, configs[0]["feature_size"]], tf.float32)])
        def encode(features):
            return tf.nn.relu(tf.einsum("nf,kfu->nku", features, weights["image"]) + weights["image_bias"])

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), vectors, vectors, vectors])
        def step(tokens, image, h, c):
            embedded = tf.transpose(tf.gather(weights["embedding"], tokens, axis=1), [1, 0, 2])  # [N, models, dim]
            gates = (tf.einsum("nkd,kdg->nkg", embedded, weights["kernel"])
                     + tf.einsum("nku,kug->nkg", h, weights["recurrent"]) + weights["lstm_bias"])
            i, f, g, o = tf.split(gates, 4, axis=2)  # keras's gate order
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            hidden = tf.nn.relu(tf.einsum("nku,kuv->nkv", image + h, weights["hidden"]) + weights["hidden_bias"])
            logits = tf.einsum("nku,kuv->nkv", hidden, weights["logits"]) + weights["logits_bias"] + banned
            log_probs = tf.nn.log_softmax(logits)
            mean = log_probs[:, 0] if len(models) == 1 else tf.nn.log_softmax(tf.reduce_mean(log_probs, axis=1))
            return mean, h, c

        self._encode, self._step = encode, step

    def encode(self, features: np.ndarray) -> tuple:
        """The initial decoding state of each image: (image vectors, zero h, zero c)."""
        image = self._encode(np.asarray(features, np.float32)).numpy()
        zeros = np.zeros_like(image)
        return image, zeros, zeros

    def step(self, tokens: np.ndarray, state: tuple) -> tuple[np.ndarray, tuple]:
        """(previous tokens [N], state) -> (log-probabilities of the next token [N, V], new state)."""
        image, h, c = state
        log_probs, h, c = self._step(np.asarray(tokens, np.int32), image, h, c)
        return log_probs.numpy(), (image, h.numpy(), c.numpy())
