"""altvoice from Python, without Beam: describe images and speak the descriptions.

    import altvoice

    model = altvoice.load_model()  # the bundled captioner, or a folder `altvoice train` exported
    for found in model.describe(["cat.jpg", open("dog.png", "rb").read()]):
        print(found.alt_text, found.confidence, found.needs_review, found.error)
    wav = altvoice.speak("A cat on a sofa.")  # bytes of a WAV file, best offline voice

One bad image is a Description with `error` set; the others are described.
"""
import os
from typing import NamedTuple

import fsspec

from altvoice.flags import check_specificity
from altvoice.images import ImageError, decode_sizes
from altvoice.outputs import alt_text
from altvoice.sources import Limits, read_capped

class Description(NamedTuple):
    """What altvoice says of one image; `error` (with the other fields None) when it can't be read."""

    image: str
    caption: str | None
    alt_text: str | None
    score: float | None
    confidence: float | None
    needs_review: bool | None
    objects: list | None
    error: str | None = None


class Model:
    """A loaded captioner (with its object classifier when the export has one)."""

    def __init__(self, captioner, beam_width: int | None, specificity: float | None = None):
        self.captioner, self.beam_width, self.specificity = captioner, beam_width, specificity

    def describe(self, images: list, batch_size: int = 64) -> list[Description]:
        """Paths or URLs (str, os.PathLike) or encoded bytes -> one Description each, in order."""
        from altvoice.model.classifier import IMAGE_SIZE as OBJECT_SIZE

        sizes = (self.captioner.image_size,) + ((OBJECT_SIZE,) if self.captioner.classifier else ())
        names, decoded, out = [], [], []
        for index, item in enumerate(images):
            name = os.fspath(item) if isinstance(item, (str, os.PathLike)) else f"#{index}"
            names.append(name)
            try:
                decoded.append(decode_sizes(_read(item), sizes))
            except (ImageError, OSError, ValueError) as err:
                decoded.append(err)
        good = [d for d in decoded if not isinstance(d, Exception)]
        found = []
        for start in range(0, len(good), batch_size):
            batch = good[start : start + batch_size]
            objects = [d[1] for d in batch] if len(sizes) > 1 else None
            found += self.captioner.describe_images([d[0] for d in batch], objects, beam_width=self.beam_width,
                                                    specificity=self.specificity)
        results = iter(found)
        for name, item in zip(names, decoded):
            if isinstance(item, Exception):
                out.append(Description(name, None, None, None, None, None, None, str(item)))
            else:
                g = next(results)
                out.append(Description(name, g.caption, alt_text(g.caption), round(float(g.score), 4), g.confidence,
                                       g.needs_review, g.objects))
        return out


def _read(item) -> bytes:
    if isinstance(item, (bytes, bytearray)):
        return bytes(item)
    with fsspec.open(os.fspath(item), "rb") as f:
        return read_capped(f, Limits())


def load_model(model_dir: str | None = None, grounding: bool = True, beam_width: int | None = None,
               specificity: float | None = None) -> Model:
    """The exported captioner at `model_dir` (local or any fsspec URL; default: the bundled one).
    `beam_width` and `specificity` (see `altvoice caption --specificity`) None use the export's; a
    specificity that can't take effect raises altvoice.flags.UsageError (a ValueError)."""
    from altvoice.model.export import BUNDLED_MODEL, load_captioner

    captioner = load_captioner(model_dir or BUNDLED_MODEL, grounding=grounding)
    check_specificity(specificity, beam_width or captioner.card["decoding"]["beam_width"],
                      captioner.image_prior is not None, model_dir or BUNDLED_MODEL, "specificity")
    return Model(captioner, beam_width, specificity)


def speak(text: str, backend: str | None = None, voice: str | None = None, audio_format: str = "wav",
          **options) -> bytes:
    """`text` spoken as a complete audio file (default: the best offline backend installed)."""
    from altvoice.tts import default_backend, get_synthesizer

    synthesizer = get_synthesizer(backend or default_backend(), voice, audio_format, **options)
    if synthesizer is None:
        raise ValueError("backend 'none' makes no audio")
    return synthesizer.synthesize(text)
