"""The exported captioner: one directory that turns raw image bytes into captions.

    model_card.json          what the model is: backbone, decoder sizes, vocabulary, decoding, training, metrics
    backbone.weights.h5      the CNN (rebuilt by model.backbones.build_feature_extractor)
    backbone.tflite          the same CNN as TFLite (model.backbones.to_tflite): what captioning runs
    decoder.weights.h5       the merge decoder (rebuilt by model.decoder.build_caption_model)
    decoder-N.weights.h5     more decoders of an ensemble (N = 2, 3, ...; the card lists them)
    vocabulary.txt           one token a line, line i = id i
    classifier.tflite        optional (the card's "grounding" names them): the object classifier of
    object_words.tsv         grounded captions, its classes as plain words, the words that name
    living_words.tsv         living beings (see model.classifier), its licence, and word detectors
    LICENSE.classifier.txt   on the backbone's features (model.detectors)
    word_detectors.npz

Loading needs only altvoice: `load_captioner(path).caption_bytes([...])`, or `describe_bytes` for
grounded captions with their evidence and confidence (model.grounding).
"""
import hashlib
import io
import json
import os
import tempfile

import fsspec
import numpy as np

from altvoice.flags import UsageError
from altvoice.images import ImageError, decode_sizes
from altvoice.model.classifier import IMAGE_SIZE as OBJECT_SIZE

CARD_FILE, BACKBONE_FILE, DECODER_FILE, VOCABULARY_FILE = (
    "model_card.json", "backbone.weights.h5", "decoder.weights.h5", "vocabulary.txt")
IMAGE_PRIOR_FILE = "image_prior.npy"  # the mean training image's features: what --specificity reranks against
PRIOR_KEYS = ("image_prior", "image_prior_sha256")  # the card's decoding entries naming it
BACKBONE_TFLITE = "backbone.tflite"
CLASSIFIER_FILE, OBJECT_WORDS_FILE, LIVING_WORDS_FILE, CLASSIFIER_LICENCE = (
    "classifier.tflite", "object_words.tsv", "living_words.tsv", "LICENSE.classifier.txt")
FORMAT = "altvoice-captioner/1"

BUNDLED_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")  # the released captioner


def decoder_files(count: int) -> list[str]:
    return [DECODER_FILE] + [DECODER_FILE.replace(".", f"-{n}.", 1) for n in range(2, count + 1)]


def export_captioner(export_dir: str, decoders, extractor, vocabulary: list[str], card: dict,
                     float16: bool = False, image_prior: np.ndarray | None = None) -> dict:
    """Writes the decoder (or a list of them: an ensemble), the backbone, the vocabulary and the model card
    (to any fsspec URL), and the backbone as TFLite too. `float16` stores the decoders' weights at half size
    (loaded back as float32). `image_prior`: the mean training features, for specificity reranking."""
    from altvoice.model.backbones import to_tflite
    from altvoice.model.decoders import build_decoder, decoder_config

    decoders = decoders if isinstance(decoders, (list, tuple)) else [decoders]
    files = decoder_files(len(decoders))
    card = {"format": FORMAT, **card, "decoder": decoder_config(decoders[0]), "decoders": files,
            "decoder_weights": "float16" if float16 else "float32",
            "vocabulary": {"file": VOCABULARY_FILE, "size": len(vocabulary)}}
    card["backbone"] = {**card["backbone"], "tflite": BACKBONE_TFLITE}  # its sha256 below, once written
    with tempfile.TemporaryDirectory(prefix="altvoice-export-") as local:
        for decoder, name in zip(decoders, files):
            weights_only = build_decoder(decoder_config(decoder))  # keras would save the optimizer too
            weights_only.set_weights(decoder.get_weights())
            weights_only.save_weights(os.path.join(local, name))
            if float16:
                halve(os.path.join(local, name))
        extractor.save_weights(os.path.join(local, BACKBONE_FILE))
        with open(os.path.join(local, BACKBONE_TFLITE), "wb") as f:
            f.write(to_tflite(extractor))
        card["backbone"]["tflite_sha256"] = sha256(os.path.join(local, BACKBONE_TFLITE))
        with open(os.path.join(local, VOCABULARY_FILE), "w", encoding="utf-8") as f:
            f.write("\n".join(vocabulary) + "\n")
        extra = []
        card["decoding"] = {k: v for k, v in card["decoding"].items() if k not in PRIOR_KEYS}  # a copied card's
        if image_prior is not None:
            card["decoding"] = {**card["decoding"], **save_image_prior(local, image_prior)}
            extra.append(IMAGE_PRIOR_FILE)
        with open(os.path.join(local, CARD_FILE), "w") as f:
            json.dump(card, f, indent=2)
        fs, path = fsspec.core.url_to_fs(export_dir)
        fs.makedirs(path, exist_ok=True)
        for name in (*files, BACKBONE_FILE, BACKBONE_TFLITE, VOCABULARY_FILE, *extra, CARD_FILE):  # the card last
            fs.put_file(os.path.join(local, name), f"{path.rstrip('/')}/{name}")
    return card


def save_image_prior(export_dir: str, image_prior) -> dict:
    """Writes image_prior.npy into a local export folder; returns the card's decoding entries naming it."""
    path = os.path.join(export_dir, IMAGE_PRIOR_FILE)
    np.save(path, np.asarray(image_prior, np.float32))
    return {"image_prior": IMAGE_PRIOR_FILE, "image_prior_sha256": sha256(path)}


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check_digest(path: str, expected: str | None) -> None:
    """ValueError unless the file at `path` has the sha256 its card gives (None: an export from before
    cards carried one). TFLite trusts its files: a truncated one can crash the process instead of raising."""
    if expected and sha256(path) != expected:
        raise ValueError(f"{os.path.basename(path)} does not match the sha256 in its model card: damaged or replaced")


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


def add_classifier(model_dir: str, classifier: str, words: str, living: str, licence: str, about: dict) -> dict:
    """Adds an object classifier (TFLite file, its object-words and living-words tables, its licence) to an
    export, for grounded captions; `about` (source, licence name, ...) goes into the card's "grounding"."""
    from altvoice.model.classifier import ObjectClassifier, read_living_words

    ObjectClassifier(classifier, words)  # refuse files that would not load
    read_living_words(living)
    fs, path = fsspec.core.url_to_fs(model_dir)
    for source, name in ((classifier, CLASSIFIER_FILE), (words, OBJECT_WORDS_FILE), (living, LIVING_WORDS_FILE),
                         (licence, CLASSIFIER_LICENCE)):
        target = f"{path.rstrip('/')}/{name}"
        if not (os.path.exists(target) and os.path.samefile(source, target)):  # the bundled model's own files
            fs.put_file(source, target)
    card = read_card(model_dir)
    card["grounding"] = {**card.get("grounding", {}), **about, "classifier": CLASSIFIER_FILE,
                         "classifier_sha256": sha256(classifier),
                         "object_words": OBJECT_WORDS_FILE, "living_words": LIVING_WORDS_FILE,
                         "licence_file": CLASSIFIER_LICENCE}
    write_card(model_dir, card)
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
    """Backbone + decoder(s) + vocabulary: images in, (caption, score) out. See `model.decoding` for the score.
    With an object classifier, `describe_images` grounds the captions in its evidence (`model.grounding`).
    `features` computes the backbone's features (model.backbones.TFLiteBackbone); without it, the keras
    `extractor` does, and `extractor` may be None when `features` is given."""

    def __init__(self, card: dict, extractor, decoder_models: list, vocabulary: list[str], batch_size: int = 64,
                 classifier=None, living: dict | None = None, detectors=None, features=None, image_prior=None):
        from altvoice.model.decoders import make_decoder
        from altvoice.model.decoding import without_repeats
        from altvoice.model.grounding import Grounder

        self.card, self.extractor, self.vocabulary, self.batch_size = card, extractor, vocabulary, batch_size
        self.features = features or _traced_once(extractor, card["backbone"]["image_size"])
        self.decoder_models, self.decoder = decoder_models, make_decoder(decoder_models)
        self.step, self._start = (without_repeats(self.decoder.step, vocabulary) if card["decoding"].get("without_repeats")
                                  else (self.decoder.step, tuple))  # _start: the initial state's extra arrays
        self.image_size = card["backbone"]["image_size"]
        self.image_prior = image_prior
        self.prior_state = None if image_prior is None else self.decoder.encode(np.asarray(image_prior)[None])
        self.classifier, self.detectors = classifier, detectors
        self.grounder = classifier and Grounder(vocabulary, classifier.classes, living or {},
                                                card["grounding"].get("settings"))

    def caption_images(self, images: list[np.ndarray], beam_width: int | None = None,
                       alpha: float | None = None, specificity: float | None = None) -> list[tuple[str, float]]:
        """uint8 RGB arrays [image_size, image_size, 3] -> (caption, score) each; 0 < beam_width (1: greedy)."""
        return [(self.words(ids), score) for _, found, _, _ in self._batches(images, beam_width, alpha, specificity)
                for ids, score in found]

    def describe_images(self, images: list[np.ndarray], object_images: list[np.ndarray] | None = None,
                        beam_width: int | None = None, alpha: float | None = None,
                        min_confidence: float | None = None, specificity: float | None = None) -> list:
        """Grounded captions (model.grounding.Grounded) of images at image_size, given the same images at
        the classifier's size; without a classifier or `object_images`, the plain captions (grounding "off")."""
        from altvoice.model.grounding import Grounded

        if self.grounder is None or object_images is None:
            return [Grounded(caption, score, "off", [], None, None)
                    for caption, score in self.caption_images(images, beam_width, alpha, specificity)]
        results = []
        for start, found, state, features in self._batches(images, beam_width, alpha, specificity):
            detected = self.detectors(pooled(features)) if self.detectors else None
            evidence = self.classifier.evidence(np.stack(object_images[start : start + len(found)]), detected)
            results += self._ground(found, state, evidence, beam_width, alpha, min_confidence)
        return results

    def _ground(self, found, state, evidence, beam_width, alpha, min_confidence) -> list:
        from altvoice.model.decoding import constrained_beam_search

        alpha = self.card["decoding"]["alpha"] if alpha is None else alpha
        captions = [self.words(ids) for ids, _ in found]
        checks = [self.grounder.check(caption, e) for caption, e in zip(captions, evidence)]
        redo = [i for i, (path, _) in enumerate(checks) if path == "constrained"]
        if redo:
            settings = self.card["decoding"]
            plans = [checks[i][1] for i in redo]
            again = constrained_beam_search(
                self.step, tuple(s[redo] for s in state), settings["max_tokens"],
                beam_width or settings["beam_width"], alpha,
                [p["required"] for p in plans], [p["banned"] for p in plans])
            for i, result in zip(redo, again):
                found[i] = result or (None, float("-inf"))
                captions[i] = self.words(result[0]) if result else None
        return [self.grounder.finish(caption, score, path, plan, e, min_confidence, alpha)
                for caption, (_, score), (path, plan), e in zip(captions, found, checks, evidence)]

    def _batches(self, images, beam_width, alpha, specificity=None):
        """(start, [(ids, score)], decoding state, image features) per batch of `batch_size` images."""
        from altvoice.model.decoding import beam_search, greedy_search

        settings = self.card["decoding"]
        width = beam_width or settings["beam_width"]
        alpha = settings["alpha"] if alpha is None else alpha
        specificity = settings.get("specificity", 0.0) if specificity is None else specificity
        if specificity and width > 1 and self.prior_state is None:
            raise ValueError("specificity needs an export with an image prior (image_prior.npy, written by "
                             "altvoice train)")
        for start in range(0, len(images), self.batch_size):
            batch = np.stack(images[start : start + self.batch_size])
            if batch.shape[1:] != (self.image_size, self.image_size, 3):
                raise ValueError(f"images must be {self.image_size}x{self.image_size}x3 uint8, got {batch.shape[1:]}")
            features = self.features(batch)
            state = self._start(self.decoder.encode(features))
            if width > 1 and specificity:
                found = self._specific(state, width, alpha, specificity)
            elif width > 1:
                found = beam_search(self.step, state, settings["max_tokens"], width, alpha)
            else:
                found = greedy_search(self.step, state, settings["max_tokens"], alpha)
            yield start, found, state, features

    def _specific(self, state, width: int, alpha: float, specificity: float) -> list:
        """Beam search, then each image's finished captions reranked against the image prior (decoding.rerank)."""
        from altvoice.model.decoding import beam_search, rerank, sequence_log_probs

        max_tokens = self.card["decoding"]["max_tokens"]
        finished = beam_search(self.step, state, max_tokens, width, alpha, all_finished=True)
        sequences = [ids for row in finished for _, ids in row]
        prior = tuple(np.repeat(s, len(sequences), axis=0) for s in self.prior_state)
        return rerank(finished, sequence_log_probs(self.decoder.step, prior, sequences, max_tokens), specificity,
                      alpha, max_tokens)

    def caption_bytes(self, data: list[bytes], **kwargs) -> list[tuple[str, float]]:
        """Encoded images (JPEG, PNG, ...) -> (caption, score) each. Raises altvoice.images.ImageError at the
        first file that can't be decoded, its reason prefixed with its index; nothing is captioned then."""
        return self.caption_images([pixels for pixels, in self._decode(data, (self.image_size,))], **kwargs)

    def describe_bytes(self, data: list[bytes], **kwargs) -> list:
        """Encoded images -> grounded captions (see describe_images); ImageError as caption_bytes."""
        decoded = self._decode(data, (self.image_size, OBJECT_SIZE) if self.classifier else (self.image_size,))
        objects = [o for _, o in decoded] if self.classifier else None
        return self.describe_images([pixels for pixels, *_ in decoded], objects, **kwargs)

    def _decode(self, data: list[bytes], sizes: tuple[int, ...]) -> list[list[np.ndarray]]:
        """Each image decoded once to each size; ImageError names the first bad one's index."""
        decoded = []
        for index, item in enumerate(data):
            try:
                decoded.append(decode_sizes(item, sizes))
            except ImageError as err:
                raise ImageError(err.kind, f"image {index}: {err}") from None
        return decoded

    def words(self, ids: list[int]) -> str:
        return " ".join(self.vocabulary[i] for i in ids)


def pooled(features: np.ndarray) -> np.ndarray:
    """The pooled vectors [N, F] of features that may be grids [N, cells, F] (their mean)."""
    return features.mean(axis=1) if features.ndim == 3 else features


def _traced_once(extractor, size: int):
    """The feature extractor as one TensorFlow graph for any batch size: keras's predict_on_batch traces
    it again for every new batch size (a second or two of CPU each time, e.g. a job's last, smaller batch)."""
    import tensorflow as tf

    traced = tf.function(lambda images: extractor(images, training=False),
                         input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)])
    return lambda images: traced(images).numpy()


def check_export(model_dir: str, card: dict) -> None:
    """Opens every weights file of an export (HDF5 superblock and size) and its image prior, and counts its
    vocabulary, without building the models: a missing or truncated file raises UsageError at launch."""
    import h5py

    fs, path = fsspec.core.url_to_fs(model_dir)
    try:
        for name in (*card.get("decoders", [DECODER_FILE]), BACKBONE_FILE):
            with fs.open(f"{path.rstrip('/')}/{name}", "rb") as f, h5py.File(f, "r") as weights:
                if not len(weights.keys()):
                    raise ValueError(f"{name} holds no weights")
        if "tflite" in card["backbone"]:
            with tempfile.TemporaryDirectory(prefix="altvoice-check-") as local:
                name = card["backbone"]["tflite"]
                fs.get_file(f"{path.rstrip('/')}/{name}", os.path.join(local, name))
                check_digest(os.path.join(local, name), card["backbone"].get("tflite_sha256"))
        with fs.open(f"{path.rstrip('/')}/{VOCABULARY_FILE}", "rb") as f:
            words = len(f.read().decode("utf-8").splitlines())
        if card["decoding"].get("image_prior"):
            with fs.open(f"{path.rstrip('/')}/{card['decoding']['image_prior']}", "rb") as f:
                data = f.read()
            expected = card["decoding"].get("image_prior_sha256")
            if expected and hashlib.sha256(data).hexdigest() != expected:
                raise ValueError(f"{card['decoding']['image_prior']} does not match the sha256 in its model card")
            np.load(io.BytesIO(data))
    except (OSError, ValueError) as err:
        raise UsageError(f"{model_dir}: incomplete or damaged export ({type(err).__name__}: {err}); "
                         "export it again with `altvoice train --resume`") from None
    if words != card["vocabulary"]["size"]:
        raise UsageError(f"{model_dir}: {VOCABULARY_FILE} has {words} words, the card says "
                         f"{card['vocabulary']['size']}; export it again")


def load_captioner(model_dir: str, batch_size: int = 64, flip_average: bool | None = None,
                   grounding: bool = True, keras_backbone: bool = False, threads: int | None = None) -> Captioner:
    """Loads an export written by `export_captioner` (local or any fsspec URL); `flip_average` overrides
    the card's test-time augmentation setting (for measuring it); `grounding` False leaves out the
    object classifier of an export that has one. The backbone runs as TFLite on `threads` threads when
    the export has it and flip averaging is as exported; `keras_backbone` (or an override) loads the
    keras extractor instead (Captioner.extractor, for training, ensembles and probes)."""
    from altvoice.model.backbones import TFLiteBackbone, build_feature_extractor
    from altvoice.model.decoders import build_decoder

    card = read_card(model_dir)
    files = card.get("decoders", [DECODER_FILE])
    grounded = grounding and "grounding" in card
    backbone = card["backbone"]
    flip_average = backbone.get("flip_average", False) if flip_average is None else flip_average
    tflite = backbone.get("tflite") if flip_average == backbone.get("flip_average", False) and not keras_backbone else None
    with tempfile.TemporaryDirectory(prefix="altvoice-model-") as local:
        fs, path = fsspec.core.url_to_fs(model_dir)
        try:
            for name in (*files, tflite or BACKBONE_FILE, VOCABULARY_FILE):
                fs.get_file(f"{path.rstrip('/')}/{name}", os.path.join(local, name))
            if tflite:
                check_digest(os.path.join(local, tflite), backbone.get("tflite_sha256"))
                extractor, features = None, TFLiteBackbone(os.path.join(local, tflite), threads)
            else:
                extractor = build_feature_extractor(backbone["name"], "none", backbone["image_size"], flip_average,
                                                    grid=backbone.get("grid", False))
                extractor.load_weights(os.path.join(local, BACKBONE_FILE))
                features = None
            decoders = [build_decoder(card["decoder"]) for _ in files]  # dropout rates don't matter here
            for decoder, name in zip(decoders, files):
                decoder.load_weights(os.path.join(local, name))
            with open(os.path.join(local, VOCABULARY_FILE), encoding="utf-8") as f:
                vocabulary = f.read().splitlines()
            image_prior = None
            if card["decoding"].get("image_prior"):
                with fs.open(f"{path.rstrip('/')}/{card['decoding']['image_prior']}", "rb") as f:
                    image_prior = np.load(f)
            classifier, living, detectors = load_grounding(model_dir, card) if grounded else (None, None, None)
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            raise UsageError(f"{model_dir}: incomplete or damaged export ({type(err).__name__}: {err}); "
                             "export it again with `altvoice train --resume`") from None
    if len(vocabulary) != card["vocabulary"]["size"]:
        raise UsageError(f"{model_dir}: {VOCABULARY_FILE} has {len(vocabulary)} words, the card says "
                         f"{card['vocabulary']['size']}; export it again")
    return Captioner(card, extractor, decoders, vocabulary, batch_size, classifier, living, detectors, features,
                     image_prior)


def load_grounding(model_dir: str, card: dict) -> tuple:
    """(ObjectClassifier, {word: living kind}, WordDetectors or None) of an export whose card has a
    "grounding" section; OSError or ValueError when a file is missing or damaged."""
    from altvoice.model.classifier import ObjectClassifier, read_living_words
    from altvoice.model.detectors import WordDetectors

    detectors = card["grounding"].get("word_detectors", {}).get("file")
    with tempfile.TemporaryDirectory(prefix="altvoice-grounding-") as local:
        fs, path = fsspec.core.url_to_fs(model_dir)
        for name in (CLASSIFIER_FILE, OBJECT_WORDS_FILE, LIVING_WORDS_FILE, *([detectors] if detectors else [])):
            fs.get_file(f"{path.rstrip('/')}/{name}", os.path.join(local, name))
        check_digest(os.path.join(local, CLASSIFIER_FILE), card["grounding"].get("classifier_sha256"))
        classifier = ObjectClassifier(os.path.join(local, CLASSIFIER_FILE), os.path.join(local, OBJECT_WORDS_FILE))
        living = read_living_words(os.path.join(local, LIVING_WORDS_FILE))
        return classifier, living, detectors and WordDetectors.load(os.path.join(local, detectors))
