"""Every job's flags, and usage errors: plain argparse, so `--help` needs neither Beam nor TensorFlow.

The Beam jobs' PipelineOptions (altvoice.pipelines.options) and the plain jobs (train, ensemble,
evaluate) add these same flags; `JOB_FLAGS` is what `altvoice <job> --help` lists.
"""
import argparse
import math

BACKBONES = ("densenet121", "efficientnet_b0", "inception_v3", "mobilenet_v2", "resnet50")  # model.backbones'


class UsageError(ValueError):
    """A command line that can't run: the message says what to change."""


def require(options, *names):
    """Raises UsageError naming every required flag that is missing."""
    missing = [f"--{n.replace('_', '-')}" for n in names if not getattr(options, n)]
    if missing:
        raise UsageError(f"missing required option(s): {', '.join(missing)}")


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



def shared(parser) -> None:
    """Flags the Beam jobs share."""
    parser.add_argument("--output", help="output directory (local path or gs://...)")
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=None,
                        help="images per model call (default 64)")
    parser.add_argument("--corrections", default=None, help="corrections.jsonl files from the review page, "
                        "comma-separated: caption writes their alt texts and decisions into the records, speaks them "
                        "and keeps them in later runs; preprocess adds their alt texts as training captions")


def preprocess(parser) -> None:
    """Flags of `altvoice preprocess`."""
    parser.add_argument("--captions", help="captions files, comma-separated: Flickr8k token format, image,caption "
                        "CSV, MS-COCO captions JSON or Karpathy split JSON (detected by content)")
    parser.add_argument("--images", help="images: folder, glob, fsspec URL, or .zip/.tar(.gz) archive")
    parser.add_argument("--train-split", "--train_split", dest="train_split",
                        help="training images: a file listing names, one a line, or a captions file (all its "
                        "images); needed unless --captions has a Karpathy split JSON, whose splits these replace")
    parser.add_argument("--dev-split", "--dev_split", dest="dev_split", help="dev images, as --train-split")
    parser.add_argument("--test-split", "--test_split", dest="test_split", default=None,
                        help="test images, as --train-split (optional)")
    parser.add_argument("--backbone", default="inception_v3", choices=BACKBONES, help="CNN for image features")
    parser.add_argument(
        "--backbone-weights", "--backbone_weights", dest="backbone_weights", default="imagenet",
        help="'imagenet' (downloaded), a weights file path, or 'none' (random, for tests)",
    )
    parser.add_argument("--image-size", "--image_size", dest="image_size", type=int, default=None,
                        help="square input size for the backbone (default: the backbone's own)")
    parser.add_argument("--features", default="pooled", choices=("pooled", "grid"),
                        help="image features to store, once per image as float16: the backbone's pooled vector "
                        "(for --decoder merge) or its spatial grid of cells (for --decoder transformer; "
                        "merge can train on it too)")
    parser.add_argument("--min-word-count", "--min_word_count", dest="min_word_count", type=int, default=10,
                        help="keep words seen at least this often in the train split")
    parser.add_argument("--max-length", "--max_length", dest="max_length", type=int, default=40,
                        help="caption length in tokens, <start> and <end> included; longer ones are truncated")
    parser.add_argument("--drop-single-letters", "--drop_single_letters", dest="drop_single_letters",
                        action="store_true", help="drop one-letter words such as 'a' (the seed's rule)")
    parser.add_argument("--glove", default=None, help="GloVe text file: write the vocabulary's embedding matrix")
    parser.add_argument("--overwrite", action="store_true", help="replace what an earlier run wrote to --output "
                        "(without it, an --output that holds files is refused)")


PREPROCESS_REQUIRED = ("captions", "images", "output")  # and --train-split/--dev-split unless a Karpathy JSON has splits


def check_specificity(value: float | None, beam_width: int, has_prior: bool, model: str,
                      name: str = "--specificity") -> None:
    """UsageError for a specificity that could not take effect as asked: not a finite number >= 0, on greedy
    search (it reranks the beam's captions), or on a model without an image prior. None: the model's own."""
    if value is None:
        return
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{name} must be a number of at least 0, got {value}")
    if value and beam_width < 2:
        raise UsageError(f"{name} reranks the beam's captions: it needs a beam width above 1, got {beam_width}")
    if value and not has_prior:
        raise UsageError(f"{name}: {model} has no image prior (image_prior.npy, which altvoice train writes); "
                         f"leave {name} out or export the model again")


JOB_SPECIFICITY_HELP = ("rerank each image's beam captions against the mean training image: captions that would "
                        "fit any photo lose (0 off; default: the model's; needs a model with an image prior, as the "
                        "bundled one has; costs CPU)")


def caption(parser) -> None:
    """Flags of `altvoice caption`."""
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
    parser.add_argument("--specificity", type=float, default=None, help=JOB_SPECIFICITY_HELP)
    parser.add_argument("--review", action="store_true", help="then write the review page, review/index.html "
                        "at the output root (as `altvoice review OUTPUT`)")
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


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def parse(options, argv, prog: str) -> argparse.Namespace:
    """Parses `argv` with `options._add_argparse_args`; bad or missing flags raise UsageError."""
    parser = _Parser(prog=prog)
    options._add_argparse_args(parser)
    args = parser.parse_args(argv)
    missing = [f"--{n.replace('_', '-')}" for n in options.REQUIRED if not getattr(args, n)]
    if missing:
        raise UsageError(f"missing required option(s): {', '.join(missing)}")
    return args


def _positive(kind):
    def check(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return check


def _add_decoding_args(parser, beam_default):
    parser.add_argument("--beam-width", "--beam_width", dest="beam_width", type=_positive(int), default=beam_default,
                        help="beam width; 1 is greedy search")
    parser.add_argument("--alpha", type=float, default=None,
                        help="length normalisation: score = log-probability / length**alpha")
    parser.add_argument("--specificity", type=float, default=None,
                        help="rerank the beam's captions by score - X * (their normalised log-probability given "
                        "the average training image): captions that would fit any photo lose (default: the "
                        "export's; train's default 0)")


class TrainOptions:
    """Flags of `altvoice train`."""

    REQUIRED = ("data", "output")

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--data", help="output directory of `altvoice preprocess`")
        parser.add_argument("--output", help="training directory: checkpoints/, logs/ (TensorBoard) and export/")
        parser.add_argument("--epochs", type=_positive(int), default=30,
                            help="train up to this epoch (a total: --resume counts the epochs already done)")
        parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=_positive(int), default=64,
                            help="captions per training step")
        parser.add_argument("--learning-rate", "--learning_rate", dest="learning_rate", type=_positive(float),
                            default=None, help="Adam learning rate (default 0.001; --resume keeps the run's)")
        parser.add_argument("--patience", type=_positive(int), default=3,
                            help="stop after this many epochs without a better dev loss (the best epoch is kept)")
        parser.add_argument("--decay", type=_positive(float), default=1.0,
                            help="multiply the learning rate by this after each epoch without a better dev loss")
        parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
        parser.add_argument("--decoder", default="merge", choices=("merge", "transformer"),
                            help="merge: LSTM + pooled features; transformer: attention over the image grid "
                                 "(needs preprocess --features grid)")
        parser.add_argument("--units", type=_positive(int), default=256,
                            help="LSTM and dense layer size; the transformer's model width")
        parser.add_argument("--layers", type=_positive(int), default=3, help="transformer blocks")
        parser.add_argument("--heads", type=_positive(int), default=8, help="transformer attention heads")
        parser.add_argument("--dropout", type=float, default=0.1, help="transformer dropout")
        parser.add_argument("--label-smoothing", "--label_smoothing", dest="label_smoothing", type=float,
                            default=0.1, help="transformer: share of each target's probability spread over the "
                            "vocabulary")
        parser.add_argument("--warmup-epochs", "--warmup_epochs", dest="warmup_epochs", type=float, default=1.0,
                            help="transformer: the learning rate rises linearly over these epochs, then falls as "
                            "1/sqrt(step)")
        parser.add_argument("--embedding-dim", "--embedding_dim", dest="embedding_dim", type=_positive(int),
                            default=200, help="word embedding size when the data has no GloVe matrix")
        parser.add_argument("--image-dropout", "--image_dropout", dest="image_dropout", type=float, default=0.5,
                            help="merge: dropout on the image features")
        parser.add_argument("--text-dropout", "--text_dropout", dest="text_dropout", type=float, default=0.5,
                            help="merge: dropout on the word embeddings")
        parser.add_argument("--train-embeddings", "--train_embeddings", dest="train_embeddings", action="store_true",
                            help="merge: fine-tune the GloVe embeddings (frozen by default); the transformer's, tied to its "
                            "output layer, always train")
        parser.add_argument("--backbone-weights", "--backbone_weights", dest="backbone_weights", default=None,
                            help="backbone weights for the export (default: those preprocess used)")
        parser.add_argument("--flip-average", "--flip_average", dest="flip_average", action="store_true",
                            help="the export captions from the mean of the features of each image and its mirror "
                                 "image (test-time augmentation: twice the backbone cost, better captions)")
        parser.add_argument("--scst", action="store_true",
                            help="after teacher-forced training, fine-tune the transformer with self-critical "
                            "training on the CIDEr-D reward (with --resume: of the finished run in --output)")
        parser.add_argument("--scst-epochs", "--scst_epochs", dest="scst_epochs", type=_positive(int), default=5,
                            help="self-critical epochs (a total: a rerun continues up to it)")
        parser.add_argument("--scst-samples", "--scst_samples", dest="scst_samples", type=_positive(int), default=5,
                            help="captions sampled per image and step (at least 2 with --scst-baseline mean)")
        parser.add_argument("--scst-images", "--scst_images", dest="scst_images", type=_positive(int), default=32,
                            help="images per self-critical step (each with --scst-samples captions)")
        parser.add_argument("--scst-baseline", "--scst_baseline", dest="scst_baseline", default="mean",
                            choices=("mean", "greedy"), help="reward baseline: the mean of the image's other "
                            "samples, or its greedy caption's")
        parser.add_argument("--scst-learning-rate", "--scst_learning_rate", dest="scst_learning_rate",
                            type=_positive(float), default=2e-5, help="Adam learning rate of self-critical training")
        parser.add_argument("--seed", type=int, default=None, help="random seed, for repeatable runs")
        _add_decoding_args(parser, beam_default=3)


class EnsembleOptions:
    """Flags of `altvoice ensemble`."""

    REQUIRED = ("models", "output")

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--models", nargs="+", help="exports of one backbone and vocabulary (train with other seeds)")
        parser.add_argument("--output", help="the ensemble's export directory")
        parser.add_argument("--float16", action="store_true",
                            help="store the decoders' weights as float16: half the size (computed in float32)")


class EvaluateOptions:
    """Flags of `altvoice evaluate`."""

    REQUIRED = ("model", "captions", "images", "split_file", "output")

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--model", help="an exported captioner (the export/ folder `altvoice train` writes)")
        parser.add_argument("--captions", help="reference captions: Flickr8k token format or an image,caption CSV")
        parser.add_argument("--images", help="images: folder, glob, fsspec URL, or .zip/.tar(.gz) archive")
        parser.add_argument("--split-file", "--split_file", dest="split_file", help="file listing the images to caption")
        parser.add_argument("--output", help="metrics JSON file; the captions go beside it as <name>.captions.json")
        parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=_positive(int), default=64,
                            help="images captioned at once")
        parser.add_argument("--update-model-card", "--update_model_card", dest="update_model_card",
                            action="store_true", help="also record the metrics in the model's model_card.json")
        parser.add_argument("--flip-average", "--flip_average", dest="flip_average", choices=("on", "off"),
                            default=None, help="override the model's test-time flip averaging (default: as exported)")
        parser.add_argument("--grounding", choices=("on", "off"), default="on",
                            help="ground captions in the model's object classifier, when it has one (default on)")
        _add_decoding_args(parser, beam_default=None)



def review(parser) -> None:
    """Flags of `altvoice review` (besides --output, the caption run's output folder)."""
    parser.add_argument("--images-from", "--images_from", dest="images_from", default=None,
                        help="where the images are, for thumbnails (default: the input the records name)")
    parser.add_argument("--remake-thumbnails", "--remake_thumbnails", dest="remake_thumbnails", action="store_true",
                        help="remake thumbnails that exist for the same version of an image")


def describe_video(parser) -> None:
    """Flags of `altvoice describe-video` beyond caption's."""
    parser.add_argument("--range-seconds", "--range_seconds", dest="range_seconds", type=_positive(float),
                        default=120.0, help="long videos are scanned for shots in time ranges of this many "
                        "seconds, in parallel (default 120)")


def _video_help(parser) -> None:
    parser.add_argument("--input", help="videos (.mp4 .m4v .mov .webm .mkv .avi): folder (recursive), glob, fsspec "
                        "URL, or .zip/.tar(.gz) archive")
    parser.add_argument("--model", default=None, help="exported captioner (default: the bundled model)")
    parser.add_argument("--grounding", default="on", choices=["on", "off"], help="grounded captions (default on)")
    parser.add_argument("--beam-width", "--beam_width", dest="beam_width", type=int, default=None,
                        help="beam search width (default: the model's)")
    parser.add_argument("--specificity", type=float, default=None, help=JOB_SPECIFICITY_HELP)
    parser.add_argument("--tts", default=None, choices=["piper", "espeak", "google", "none"],
                        help="narration voice backend (default: the best offline one installed)")
    parser.add_argument("--voice", default=None, help="backend voice")
    parser.add_argument("--tts-option", "--tts_option", dest="tts_option", action="append", default=[],
                        metavar="KEY=VALUE", help="backend option, repeatable (e.g. speaking_rate=1.1)")
    parser.add_argument("--force", action="store_true", help="redo videos whose outputs are up to date")
    describe_video(parser)


def _review_help(parser) -> None:
    parser.add_argument("--output", help="OUTPUT: the output folder of an `altvoice caption` run (also the first "
                        "argument: altvoice review OUTPUT)")
    review(parser)


def demo(parser) -> None:
    """Flags of `altvoice demo`."""
    parser.add_argument("--output", default="demo-output", help="where the demo writes (default ./demo-output)")
    parser.add_argument("--model", default=None, help="exported captioner (default: the bundled model)")
    parser.add_argument("--tts", default=None, help="speech backend (default: the best offline one installed)")


JOB_FLAGS = {"preprocess": (shared, preprocess), "caption": (shared, caption), "train": (TrainOptions._add_argparse_args,),
             "ensemble": (EnsembleOptions._add_argparse_args,), "evaluate": (EvaluateOptions._add_argparse_args,),
             "review": (_review_help,), "describe-video": (shared, _video_help), "demo": (demo,)}
BEAM_JOBS = ("preprocess", "caption", "review", "describe-video")  # the jobs that also take Beam's pipeline options
