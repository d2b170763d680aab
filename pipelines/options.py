"""Pipeline options: each job's flags as a PipelineOptions subclass, beside Beam's own."""
from apache_beam.options.pipeline_options import PipelineOptions

from model.backbones import BACKBONES


class UsageError(ValueError):
    """A command line that can't run: the message says what to change."""


def require(options, *names):
    """Raises UsageError naming every required flag that is missing."""
    missing = [f"--{n.replace('_', '-')}" for n in names if not getattr(options, n)]
    if missing:
        raise UsageError(f"missing required option(s): {', '.join(missing)}")


class JobOptions(PipelineOptions):
    """Flags every altvoice job shares. Beam parses all PipelineOptions subclasses with one parser,
    so a flag two jobs use is defined once, here."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--output", help="output directory (local path or gs://...)")
        parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=None,
                            help="images per model call (default: preprocess 64, caption 32)")


def add_job_flags(parser, options_class) -> None:
    """Adds a job's flags, shared ones included, to an argparse parser (for --help)."""
    for cls in reversed(options_class.__mro__):
        if issubclass(cls, PipelineOptions) and cls is not PipelineOptions and "_add_argparse_args" in vars(cls):
            cls._add_argparse_args(parser)


class PreprocessOptions(JobOptions):
    """Flags of `altvoice preprocess`."""

    REQUIRED = ("captions", "images", "output")  # and --train-split/--dev-split unless a Karpathy JSON has splits

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--captions", help="captions files, comma-separated: Flickr8k token format, image,caption "
                            "CSV, MS-COCO captions JSON or Karpathy split JSON (detected by content)")
        parser.add_argument("--images", help="images: folder, glob, fsspec URL, or .zip/.tar(.gz) archive")
        parser.add_argument("--train-split", "--train_split", dest="train_split",
                            help="training images: a file listing names, one a line, or a captions file (all its "
                            "images); needed unless --captions has a Karpathy split JSON, whose splits these replace")
        parser.add_argument("--dev-split", "--dev_split", dest="dev_split", help="dev images, as --train-split")
        parser.add_argument("--test-split", "--test_split", dest="test_split", default=None,
                            help="test images, as --train-split (optional)")
        parser.add_argument("--backbone", default="inception_v3", choices=sorted(BACKBONES), help="CNN for image features")
        parser.add_argument(
            "--backbone-weights", "--backbone_weights", dest="backbone_weights", default="imagenet",
            help="'imagenet' (downloaded), a weights file path, or 'none' (random, for tests)",
        )
        parser.add_argument("--image-size", "--image_size", dest="image_size", type=int, default=None,
                            help="square input size for the backbone (default: the backbone's own)")
        parser.add_argument("--min-word-count", "--min_word_count", dest="min_word_count", type=int, default=10,
                            help="keep words seen at least this often in the train split")
        parser.add_argument("--max-length", "--max_length", dest="max_length", type=int, default=40,
                            help="caption length in tokens, <start> and <end> included; longer ones are truncated")
        parser.add_argument("--drop-single-letters", "--drop_single_letters", dest="drop_single_letters",
                            action="store_true", help="drop one-letter words such as 'a' (the seed's rule)")
        parser.add_argument("--glove", default=None, help="GloVe text file: write the vocabulary's embedding matrix")


def parse_tts_options(pairs: list[str]) -> dict:
    """`--tts-option KEY=VALUE` pairs as keyword arguments, numbers and booleans converted."""
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--tts-option {pair!r}: expected KEY=VALUE")
        if value.lower() in ("true", "false"):
            options[key] = value.lower() == "true"
            continue
        for kind in (int, float):
            try:
                options[key] = kind(value)
                break
            except ValueError:
                continue
        else:
            options[key] = value
    return options


class CaptionOptions(JobOptions):
    """Flags of `altvoice caption`."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--input", help="images: folder (recursive), glob, fsspec URL, or .zip/.tar(.gz) archive")
        parser.add_argument("--model", default=None, help="exported captioner (default: the bundled model)")
        parser.add_argument("--tts", default=None, choices=["piper", "espeak", "google", "none"],
                            help="speech backend (default: the best offline one installed)")
        parser.add_argument("--voice", default=None, help="backend voice (piper voice package or .onnx, "
                            "espeak-ng voice, Cloud TTS voice name)")
        parser.add_argument("--audio-format", "--audio_format", dest="audio_format", default="wav",
                            choices=["wav", "mp3", "ogg"], help="audio file format")
        parser.add_argument("--tts-option", "--tts_option", dest="tts_option", action="append", default=[],
                            metavar="KEY=VALUE", help="backend option, repeatable (e.g. speaking_rate=1.1, "
                            "requests_per_minute=250, speed=160)")
        parser.add_argument("--force", action="store_true", help="redo images whose outputs are up to date")
        parser.add_argument("--in-place", "--in_place", dest="in_place", action="store_true",
                            help="write beside the originals (folder or glob input only)")
        parser.add_argument("--embed-metadata", "--embed_metadata", dest="embed_metadata", action="store_true",
                            help="also write a copy of each JPEG/PNG with the alt text in its XMP")
        parser.add_argument("--beam-width", "--beam_width", dest="beam_width", type=int, default=None,
                            help="beam search width (default: the model's; 1 = greedy)")
        parser.add_argument("--prune", action="store_true", help="delete the outputs (record, audio, tagged copy) "
                            "of images no longer in the source; without it they are only listed in the manifest")
        parser.add_argument("--max-file-mb", "--max_file_mb", dest="max_file_mb", type=float, default=128,
                            help="larger files (and archive members) are not read: one error line each (default 128)")
        parser.add_argument("--max-megapixels", "--max_megapixels", dest="max_megapixels", type=float, default=64,
                            help="larger images are not decoded: one error line each (default 64; decoded size "
                            "is also capped at 256 MiB, 16-bit images counting twice)")
        parser.add_argument("--grounding", default="on", choices=["on", "off"],
                            help="check captions against the model's object classifier (default on; off: "
                            "the captioner alone)")
        parser.add_argument("--min-confidence", "--min_confidence", dest="min_confidence", type=float, default=None,
                            help="write only captions at least this confident (0-1); the rest get a plain "
                            "fallback text and needs_review")


def job_pipeline_options(argv) -> PipelineOptions:
    """Beam options for a job. With no --runner, Beam's FnApiRunner: what the DirectRunner runs these
    pipelines on, minus its attempt to download and switch to the Prism runner first."""
    from apache_beam.options.pipeline_options import StandardOptions

    options = PipelineOptions(argv)
    if options.view_as(StandardOptions).runner is None:
        options.view_as(StandardOptions).runner = "FnApiRunner"
    return options
