"""The decoder kinds behind one interface: build from a card's config, read a model's config, decode.

"merge" (model.decoder: LSTM over the pooled vector) and "transformer" (model.transformer: attention
over the image grid). A config without "kind" is a merge decoder (exports before the transformer).
"""
import keras

from altvoice.model import decoder as merge
from altvoice.model import transformer

KINDS = ("merge", transformer.KIND)


def kind_of(config: dict) -> str:
    return config.get("kind", "merge")


def build_decoder(config: dict) -> keras.Model:
    """A decoder model of the architecture a card's "decoder" config describes (weights untrained)."""
    config = dict(config)
    if kind_of(config) == transformer.KIND:
        config.pop("kind")
        return transformer.build_transformer_model(**config)
    config.pop("kind", None)
    return merge.build_caption_model(**config)


def decoder_config(model: keras.Model) -> dict:
    """The config that rebuilds `model` with `build_decoder`."""
    if is_transformer(model):
        return transformer.transformer_config(model)
    return {"kind": "merge", **merge.model_config(model)}


def is_transformer(model: keras.Model) -> bool:
    return any(layer.name == "transformer" for layer in model.layers)


def architecture(config: dict) -> dict:
    """What decoders must share to decode together (no dropout rates)."""
    kept = {k: v for k, v in config.items() if not k.endswith("dropout") and k != "train_embeddings"}
    return {**kept, "kind": kind_of(config)}


def make_decoder(models: list[keras.Model]):
    """The step decoder of a list of models: merge decoders ensemble; a transformer decodes alone."""
    if any(is_transformer(m) for m in models):
        if len(models) > 1:
            raise ValueError("a transformer export has one decoder: ensembles are of merge decoders")
        return transformer.TransformerDecoder(models[0])
    return merge.Decoder(models)
