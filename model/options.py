"""Flags of `altvoice train` and `altvoice evaluate` (plain Python jobs: no Beam options)."""
import argparse

from pipelines.options import UsageError


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
        parser.add_argument("--units", type=_positive(int), default=256, help="LSTM and dense layer size")
        parser.add_argument("--embedding-dim", "--embedding_dim", dest="embedding_dim", type=_positive(int),
                            default=200, help="word embedding size when the data has no GloVe matrix")
        parser.add_argument("--image-dropout", "--image_dropout", dest="image_dropout", type=float, default=0.5,
                            help="dropout on the image features")
        parser.add_argument("--text-dropout", "--text_dropout", dest="text_dropout", type=float, default=0.5,
                            help="dropout on the word embeddings")
        parser.add_argument("--train-embeddings", "--train_embeddings", dest="train_embeddings", action="store_true",
                            help="fine-tune the GloVe embeddings (frozen by default)")
        parser.add_argument("--backbone-weights", "--backbone_weights", dest="backbone_weights", default=None,
                            help="backbone weights for the export (default: those preprocess used)")
        parser.add_argument("--flip-average", "--flip_average", dest="flip_average", action="store_true",
                            help="the export captions from the mean of the features of each image and its mirror "
                                 "image (test-time augmentation: twice the backbone cost, better captions)")
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
