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


class PreprocessOptions(PipelineOptions):
    """Flags of `altvoice preprocess`."""

    REQUIRED = ("captions", "images", "train_split", "dev_split", "output")

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--captions", help="captions file: Flickr8k token format or an image,caption CSV")
        parser.add_argument("--images", help="images: folder, glob, fsspec URL, or .zip/.tar(.gz) archive")
        parser.add_argument("--train-split", "--train_split", dest="train_split", help="file listing training images")
        parser.add_argument("--dev-split", "--dev_split", dest="dev_split", help="file listing dev images")
        parser.add_argument("--test-split", "--test_split", dest="test_split", default=None, help="file listing test images")
        parser.add_argument("--output", help="output directory (local or any fsspec/Beam URL)")
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
        parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=64,
                            help="images per backbone call")
