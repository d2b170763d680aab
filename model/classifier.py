"""Object evidence: an ImageNet classifier (8-bit TFLite MobileNetV2) and its classes as plain caption words.

    classifier.tflite     uint8 RGB [N, 224, 224, 3] -> 1001 quantised scores (0: background)
    object_words.tsv      class index -> ImageNet label, plain word, kind, chain of plain words
    living_words.tsv      word -> the living kind it names (person, dog, cat, horse, bird, animal)
                          (both made from WordNet by bench/make_object_words.py)

`ObjectClassifier.classify` gives class probabilities; `Evidence` sums them over the plain words and
kinds the classes map to (12 dog breeds at 0.05 each are "dog" at 0.6).
"""
import csv
import os
import threading
from typing import NamedTuple

import numpy as np

IMAGE_SIZE = 224
GENERAL_KINDS = ("dog", "cat", "bird", "horse", "animal", "food", "drink", "vehicle", "furniture", "plant")
KINDS = ("person", "dog", "cat", "bird", "horse", "animal", "food", "drink", "vehicle", "furniture",
         "clothing", "plant", "scene", "structure", "thing")


class ObjectClass(NamedTuple):
    label: str  # the first ImageNet name, e.g. "tabby"
    word: str  # the plain word, e.g. "cat"
    kind: str  # one of KINDS
    words: tuple[str, ...]  # plain words from specific to general, e.g. ("cat", "animal")


def read_object_words(path: str) -> list[ObjectClass]:
    """The table's rows in class order (row i is class i + 1); ValueError when it is not one."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    classes = []
    for number, row in enumerate(rows, 1):
        if None in row.values() or row.get("index") != str(number) or row["kind"] not in KINDS:
            raise ValueError(f"{path}: row {number} is not class {number} with a known kind and words: {row}")
        classes.append(ObjectClass(row["label"], row["word"], row["kind"], tuple(row["words"].split("|"))))
    return classes


def read_living_words(path: str) -> dict[str, str]:
    """{word: kind} of the words that name living beings ("puppy": "dog", "men": "person")."""
    with open(path, encoding="utf-8", newline="") as f:
        return {row["word"]: row["kind"] for row in csv.DictReader(f, delimiter="\t")}


class Evidence:
    """What a classifier saw in one image: class probabilities, summed by plain word and by kind."""

    def __init__(self, probabilities: np.ndarray, classes: list[ObjectClass], detected: dict | None = None):
        self.probabilities, self.detected = probabilities, detected or {}  # detected: model.detectors' {word: p}
        self.by_word, self.by_kind = {}, {}
        for index in np.flatnonzero(probabilities >= 0.005):
            p, c = float(probabilities[index]), classes[index]
            for word in c.words:
                self.by_word[word] = self.by_word.get(word, 0.0) + p
            self.by_kind[c.kind] = self.by_kind.get(c.kind, 0.0) + p
        self._classes = classes

    def top_classes(self, count: int = 5, minimum: float = 0.05) -> list[dict]:
        """The most probable classes: [{word, class, probability}], for the caption record."""
        order = np.argsort(-self.probabilities)[:count]
        return [{"word": self._classes[i].word, "class": self._classes[i].label,
                 "probability": round(float(self.probabilities[i]), 3)}
                for i in order if self.probabilities[i] >= minimum]

    def top_word(self) -> tuple[str | None, float, str | None]:
        """The most probable class's plain word, that word's probability, and the plain word of its kind
        (the last of its chain) for kinds that have a useful one ("food", "bird"; not "device")."""
        if not len(self.probabilities):
            return None, 0.0, None
        c = self._classes[int(np.argmax(self.probabilities))]
        general = c.words[-1] if c.kind in GENERAL_KINDS else None
        return c.words[0], self.by_word.get(c.words[0], 0.0), general

    def kind(self) -> tuple[str, float]:
        """The most probable kind and its probability."""
        if not self.by_kind:
            return "thing", 0.0
        kind = max(self.by_kind, key=self.by_kind.get)
        return kind, self.by_kind[kind]

    def best_word(self, kind: str, minimum: float) -> tuple[str, float, tuple[str, ...]] | None:
        """The plain word for the most probable class of `kind`: its entry-level word, or the next more
        general one, with at least `minimum` probability summed over all classes (tabby 0.3 + Egyptian
        cat 0.3: "cat" 0.6), with the chain of words from it up; None when neither has that much (the
        words above them, such as "device" or "structure", say nothing)."""
        for index in np.argsort(-self.probabilities)[:10]:
            c = self._classes[index]
            if c.kind == kind:
                for n, word in enumerate(c.words[:2]):
                    if self.by_word.get(word, 0.0) >= minimum:
                        return word, self.by_word[word], c.words[n:]
        return None


class ObjectClassifier:
    """The TFLite ImageNet classifier: one interpreter, loaded once per worker process."""

    def __init__(self, model_path: str, words_path: str, threads: int | None = None):
        self.classes = read_object_words(words_path)
        self._interpreter = tflite_interpreter(model_path, threads)
        self._lock = threading.Lock()  # one interpreter, however many threads share the loaded model
        self._input_index = self._interpreter.get_input_details()[0]["index"]
        output = self._interpreter.get_output_details()[0]
        self._output_index = output["index"]
        self._scale, self._zero = output["quantization"]
        if output["shape"][-1] != len(self.classes) + 1:
            raise ValueError(f"{words_path} has {len(self.classes)} classes, the classifier {output['shape'][-1] - 1}")

    def classify(self, images: np.ndarray) -> np.ndarray:
        """uint8 RGB [N, 224, 224, 3] -> probabilities [N, 1000] of the ImageNet classes (background dropped).
        The graph's batch is fixed at 1 (a reshape inside it), so a batch is one invoke per image (~5 ms)."""
        images = np.ascontiguousarray(images, np.uint8)
        if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
            raise ValueError(f"images must be {IMAGE_SIZE}x{IMAGE_SIZE}x3 uint8, got {images.shape[1:]}")
        scores = np.empty((len(images), 1001), np.float32)
        with self._lock:
            for row, image in enumerate(images):
                self._interpreter.set_tensor(self._input_index, image[None])
                self._interpreter.invoke()
                scores[row] = self._interpreter.get_tensor(self._output_index)[0]
        probabilities = (scores[:, 1:] - self._zero) * self._scale
        return probabilities / np.maximum(probabilities.sum(axis=1, keepdims=True), 1e-6)

    def evidence(self, images: np.ndarray, detected: list[dict] | None = None) -> list[Evidence]:
        """Evidence per image; `detected` the word detectors' {word: probability} of each, if any."""
        detected = [None] * len(images) if detected is None else detected
        return [Evidence(p, self.classes, d) for p, d in zip(self.classify(images), detected)]


def tflite_interpreter(model_path: str, threads: int | None):
    """A TFLite interpreter from TensorFlow (its deprecation notice silenced); ValueError for a damaged file.
    Not thread-safe: callers hold a lock around set_tensor, invoke and get_tensor."""
    import warnings

    import tensorflow as tf

    if not os.path.isfile(model_path):
        raise ValueError(f"no classifier at {model_path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=model_path, num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter
