"""The exported captioner: one directory that turns raw image bytes into captions.

    model_card.json          what the model is: backbone, decoder sizes, vocabulary, decoding, training, metrics
    backbone.weights.h5      the CNN (rebuilt by model.backbones.build_feature_extractor)
    decoder.weights.h5       the merge decoder (rebuilt by model.decoder.build_caption_model)
    vocabulary.txt           one token a line, line i = id i

Loading needs only altvoice: `load_captioner(path).caption_bytes([...])`.
"""
import json
import os
import tempfile

import fsspec
import numpy as np

from altvoice.images import ImageError, decode_image
from pipelines.options import UsageError

CARD_FILE, BACKBONE_FILE, DECODER_FILE, VOCABULARY_FILE = (
    "model_card.json", "backbone.weights.h5", "decoder.weights.h5", "vocabulary.txt")
FORMAT = "altvoice-captioner/1"


def export_captioner(export_dir: str, decoder, extractor, vocabulary: list[str], card: dict) -> dict:
    """Writes the decoder, the backbone, the vocabulary and the model card (to any fsspec URL)."""
    from model.decoder import build_caption_model, model_config

    card = {"format": FORMAT, **card, "decoder": model_config(decoder),
            "vocabulary": {"file": VOCABULARY_FILE, "size": len(vocabulary)}}
    weights_only = build_caption_model(**card["decoder"])  # keras would save a compiled model's optimizer too
    weights_only.set_weights(decoder.get_weights())
    with tempfile.TemporaryDirectory(prefix="altvoice-export-") as local:
        weights_only.save_weights(os.path.join(local, DECODER_FILE))
        extractor.save_weights(os.path.join(local, BACKBONE_FILE))
        with open(os.path.join(local, VOCABULARY_FILE), "w", encoding="utf-8") as f:
            f.write("\n".join(vocabulary) + "\n")
        with open(os.path.join(local, CARD_FILE), "w") as f:
            json.dump(card, f, indent=2)
        fs, path = fsspec.core.url_to_fs(export_dir)
        fs.makedirs(path, exist_ok=True)
        for name in (DECODER_FILE, BACKBONE_FILE, VOCABULARY_FILE, CARD_FILE):  # the card last: it marks a whole export
            fs.put_file(os.path.join(local, name), f"{path.rstrip('/')}/{name}")
    return card


def read_card(model_dir: str) -> dict:
    """model_card.json of an export, or UsageError saying `model_dir` isn't one."""
    try:
        with fsspec.open(f"{model_dir.rstrip('/')}/{CARD_FILE}", "r") as f:
            card = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise UsageError(f"{model_dir} is not an exported captioner ({CARD_FILE}: {err}); "
                         "use the export/ folder that `altvoice train` writes") from None
    if card.get("format") != FORMAT:
        raise UsageError(f"{model_dir}/{CARD_FILE} is not a {FORMAT} model card (format {card.get('format')!r})")
    return card


def write_card(model_dir: str, card: dict) -> None:
    with fsspec.open(f"{model_dir.rstrip('/')}/{CARD_FILE}", "w") as f:
        json.dump(card, f, indent=2)


class Captioner:
    """Backbone + decoder + vocabulary: images in, (caption, score) out. See `model.decoding` for the score."""

    def __init__(self, card: dict, extractor, decoder_model, vocabulary: list[str], batch_size: int = 64):
        from model.decoder import Decoder

        self.card, self.extractor, self.vocabulary, self.batch_size = card, extractor, vocabulary, batch_size
        self.decoder_model, self.decoder = decoder_model, Decoder(decoder_model)
        self.image_size = card["backbone"]["image_size"]

    def caption_images(self, images: list[np.ndarray], beam_width: int | None = None,
                       alpha: float | None = None) -> list[tuple[str, float]]:
        """uint8 RGB arrays [image_size, image_size, 3] -> (caption, score) each; 0 < beam_width (1: greedy)."""
        from model.decoding import beam_search, greedy_search

        settings = self.card["decoding"]
        width = beam_width or settings["beam_width"]
        alpha = settings["alpha"] if alpha is None else alpha
        results = []
        for start in range(0, len(images), self.batch_size):
            batch = np.stack(images[start : start + self.batch_size])
            if batch.shape[1:] != (self.image_size, self.image_size, 3):
                raise ValueError(f"images must be {self.image_size}x{self.image_size}x3 uint8, got {batch.shape[1:]}")
            state = self.decoder.encode(self.extractor.predict_on_batch(batch))
            if width == 1:
                found = greedy_search(self.decoder.step, state, settings["max_tokens"], alpha)
            else:
                found = beam_search(self.decoder.step, state, settings["max_tokens"], width, alpha)
            results += [(self.words(ids), score) for ids, score in found]
        return results

    def caption_bytes(self, data: list[bytes], **kwargs) -> list[tuple[str, float]]:
        """Encoded images (JPEG, PNG, ...) -> (caption, score) each. Raises altvoice.images.ImageError at the
        first file that can't be decoded, its reason prefixed with its index; nothing is captioned then."""
        images = []
        for index, item in enumerate(data):
            try:
                images.append(decode_image(item, self.image_size))
            except ImageError as err:
                raise ImageError(err.kind, f"image {index}: {err}") from None
        return self.caption_images(images, **kwargs)

    def words(self, ids: list[int]) -> str:
        return " ".join(self.vocabulary[i] for i in ids)


def load_captioner(model_dir: str, batch_size: int = 64) -> Captioner:
    """Loads an export written by `export_captioner` (local or any fsspec URL)."""
    from model.backbones import build_feature_extractor
    from model.decoder import build_caption_model

    card = read_card(model_dir)
    with tempfile.TemporaryDirectory(prefix="altvoice-model-") as local:
        fs, path = fsspec.core.url_to_fs(model_dir)
        try:
            for name in (DECODER_FILE, BACKBONE_FILE, VOCABULARY_FILE):
                fs.get_file(f"{path.rstrip('/')}/{name}", os.path.join(local, name))
            backbone = card["backbone"]
            extractor = build_feature_extractor(backbone["name"], "none", backbone["image_size"])
            extractor.load_weights(os.path.join(local, BACKBONE_FILE))
            decoder = build_caption_model(**card["decoder"])
            decoder.load_weights(os.path.join(local, DECODER_FILE))
            with open(os.path.join(local, VOCABULARY_FILE), encoding="utf-8") as f:
                vocabulary = f.read().splitlines()
        except (OSError, ValueError, KeyError) as err:
            raise UsageError(f"{model_dir}: incomplete or damaged export ({type(err).__name__}: {err}); "
                             "export it again with `altvoice train --resume`") from None
    if len(vocabulary) != card["vocabulary"]["size"]:
        raise UsageError(f"{model_dir}: {VOCABULARY_FILE} has {len(vocabulary)} words, the card says "
                         f"{card['vocabulary']['size']}; export it again")
    return Captioner(card, extractor, decoder, vocabulary, batch_size)
