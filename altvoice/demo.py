"""`altvoice demo`: runs altvoice on real photographs that ship inside scikit-image (nothing downloaded).

Until the caption job lands, the demo runs `preprocess` over these photos with hand-written
captions and prints what it produced.
"""
import argparse
import json
import os
import shutil
import sys

# scikit-image's sample photographs (public domain or freely licensed, see skimage/data/README.txt)
SAMPLES = {
    "astronaut.png": "A woman in an orange space suit smiles in front of an American flag .",
    "chelsea.png": "An orange tabby cat looks to the side .",
    "coffee.png": "A cup of coffee on a saucer with a spoon .",
    "rocket.jpg": "A rocket stands on the launch pad under a blue sky .",
    "motorcycle_left.png": "A motorcycle is parked in a room .",
    "horse.png": "The black silhouette of a horse .",
    "camera.png": "A man stands behind a camera on a tripod .",
}


class DemoOptions:
    """Flags of `altvoice demo`."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--output", default="demo-output", help="where the demo writes (default ./demo-output)")
        parser.add_argument("--backbone-weights", dest="backbone_weights", default="none",
                            help="MobileNetV2 weights: a .h5 file, 'imagenet' (download) or 'none' (default)")


OPTIONS = DemoOptions


def sample_photos_dir() -> str:
    import skimage

    return os.path.join(os.path.dirname(skimage.__file__), "data")


def write_sample(folder: str) -> dict:
    """Copies the photos into folder/Images and writes captions and split files; returns the paths."""
    images = os.path.join(folder, "Images")
    os.makedirs(images, exist_ok=True)
    for name in SAMPLES:
        shutil.copyfile(os.path.join(sample_photos_dir(), name), os.path.join(images, name))
    paths = {"images": images, "captions": os.path.join(folder, "captions.txt")}
    with open(paths["captions"], "w") as f:
        f.writelines(f"{name}#0\t{caption}\n" for name, caption in SAMPLES.items())
    names = sorted(SAMPLES)
    for split, members in (("train", names[:-2]), ("dev", names[-2:])):
        paths[split] = os.path.join(folder, f"{split}.txt")
        with open(paths[split], "w") as f:
            f.write("\n".join(members) + "\n")
    return paths


def run(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="altvoice demo")
    DemoOptions._add_argparse_args(parser)
    args = parser.parse_args(argv)
    from pipelines import preprocess

    sample = write_sample(os.path.join(args.output, "sample"))
    summary = preprocess.run([
        "--captions", sample["captions"], "--images", sample["images"],
        "--train-split", sample["train"], "--dev-split", sample["dev"],
        "--output", os.path.join(args.output, "preprocessed"),
        "--backbone", "mobilenet_v2", "--image-size", "160", "--backbone-weights", args.backbone_weights,
        "--min-word-count", "1",
    ])
    print(json.dumps({k: summary[k] for k in ("splits", "vocabulary_size", "backbone", "feature_size", "dropped")},
                     indent=2), file=sys.stdout)
    return summary
