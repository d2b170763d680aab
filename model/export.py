"""The exported captioner: one directory that turns raw image bytes into captions.

    model_card.json          what the model is: backbone, decoder sizes, vocabulary, decoding, training, metrics
    backbone.weights.h5      the CNN (rebuilt by model.backbones.build_feature_extractor)
    decoder.weights.h5       the merge decoder (rebuilt by model.decoder.build_caption_model)
    decoder-N.weights.h5     more decoders of an ensemble (N = 2, 3, ...; the card lists them)
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


def decoder_files(count: int) -> list[str]:
    return [DECODER_FILE] + [DECODER_FILE.replace(".", f"-{n}.", 1) for n in range(2, count + 1)]


def export_captioner(export_dir: str, decoders, extractor, vocabulary: list[str], card: dict,
                     float16: bool = False) -> dict:
    """Writes the decoder (or a list of them: an ensemble), the backbone, the vocabulary and the model card
    (to any fsspec URL). `float16` stores the decoders' weights at half size (loaded back as float32)."""
    from model.decoder import build_caption_model, model_config

    decoders = decoders if isinstance(decoders, (list, tuple)) else [decoders]
    files = decoder_files(len(decoders))
    card = {"format": FORMAT, **card, "decoder": model_config(decoders[0]), "decoders": files,
            "decoder_weights": "float16" if float16 else "float32",
            "vocabulary": {"file": VOCABULARY_FILE, "size": len(vocabulary)}}
    with tempfile.TemporaryDirectory(prefix="altvoice-export-") as local:
        for decoder, name in zip(decoders, files):
            weights_only = build_caption_model(**model_config(decoder))  # keras would save the optimizer too
            weights_only.set_weights(decoder.get_weights())
            weights_only.save_weights(os.path.join(local, name))
            if float16:
                halve(os.path.join(local, name))
        extractor.save_weights(os.path.join(local, BACKBONE_FILE))
        with open(os.path.join(local, VOCABULARY_FILE), "w", encoding="utf-8") as f:
            f.write("\n".join(vocabulary) + "\n")
        with open(os.path.join(local, CARD_FILE), "w") as f:
            json.dump(card, f, indent=2)
        fs, path = fsspec.core.url_to_fs(export_dir)
        fs.makedirs(path, exist_ok=True)
        for name in (*files, BACKBONE_FILE, VOCABULARY_FILE, CARD_FILE):  # the card last: it marks a whole export
            fs.put_file(os.path.join(local, name), f"{path.rstrip('/')}/{name}")
    return card


def halve(weights_file: str) -> None:
    """Rewrites a keras .weights.h5 file with its float32 arrays as float16 (keras casts them back on load)."""
    import h5py

    def copy(source, target):
        target.attrs.update(source.attrs)
        for name, item in source.items():
            if isinstance(item, h5py.Group):
                copy(item, target.create_group(name))
            else:
                data = item[()]
                target.create_dataset(name, data=data.astype(np.float16) if data.dtype == np.float32 else data)
                target[name].attrs.update(item.attrs)

    with h5py.File(weights_file, "r") as source, h5py.File(weights_file + ".half", "w") as target:
        copy(source, target)
    os.replace(weights_file + ".half", weights_file)


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
    """Backbone + decoder(s) + vocabulary: images in, (caption, score) out. See `model.decoding` for the score."""

    def __init__(self, card: dict, extractor, decoder_models: list, vocabulary: list[str], batch_size: int = 64):
        from model.decoder import Decoder

        self.card, self.extractor, self.vocabulary, self.batch_size = card, extractor, vocabulary, batch_size
        self.decoder_models, self.decoder = decoder_models, Decoder(decoder_models)
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


def load_captioner(model_dir: str, batch_size: int = 64, flip_average: bool | None = None) -> Captioner:
    """Loads an export written by `export_captioner` (local or any fsspec URL); `flip_average` overrides
    the card's test-time augmentation setting (for measuring it)."""
    from model.backbones import build_feature_extractor
    from model.decoder import build_caption_model

    card = read_card(model_dir)
    files = card.get("decoders", [DECODER_FILE])
    with tempfile.TemporaryDirectory(prefix="altvoice-model-") as local:
        fs, path = fsspec.core.url_to_fs(model_dir)
        try:
            for name in (*files, BACKBONE_FILE, VOCABULARY_FILE):
                fs.get_file(f"{path.rstrip('/')}/{name}", os.path.join(local, name))
            backbone = card["backbone"]
            if flip_average is None:
                flip_average = backbone.get("flip_average", False)
            extractor = build_feature_extractor(backbone["name"], "none", backbone["image_size"], flip_average)
            extractor.load_weights(os.path.join(local, BACKBONE_FILE))
            decoders = [build_caption_model(**card["decoder"]) for _ in files]  # dropout rates don't matter here
            for decoder, name in zip(decoders, files):
                decoder.load_weights(os.path.join(local, name))
            with open(os.path.join(local, VOCABULARY_FILE), encoding="utf-8") as f:
                vocabulary = f.read().splitlines()
        except (OSError, ValueError, KeyError) as err:
            raise UsageError(f"{model_dir}: incomplete or damaged export ({type(err).__name__}: {err}); "
                             "export it again with `altvoice train --resume`") from None
    if len(vocabulary) != card["vocabulary"]["size"]:
        raise UsageError(f"{model_dir}: {VOCABULARY_FILE} has {len(vocabulary)} words, the card says "
                         f"{card['vocabulary']['size']}; export it again")
    return Captioner(card, extractor, decoders, vocabulary, batch_size)
