"""Preprocess throughput on Flickr8k images: the pipeline vs the seed's way vs the bare backbone.

    .venv/bin/python bench/preprocess_throughput.py --images 1000

Measured side by side in one run, on MobileNetV2@160 with the ../shared weights:
  pipeline   `altvoice preprocess` end to end (read, decode, RunInference, tf.transform, TFRecords),
             wall time for N images, and the steady-state rate from a run of --small images and
             a run of N (the difference removes Beam and tf.transform start-up);
  seed       one keras load_img + model.predict call per image, as the seed did;
  bare       predict_on_batch on pre-decoded batches: the backbone's own ceiling.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.common import FLICKR, MOBILENET_WEIGHTS, save, split_names, table, timed  # noqa: E402


def bare_backbone(names, size, batch):
    from altvoice.images import decode_image
    from altvoice.pipelines.features import FeatureExtractorHandler

    model = FeatureExtractorHandler("mobilenet_v2", MOBILENET_WEIGHTS, size, batch).load_model()
    images = np.stack([decode_image(open(os.path.join(FLICKR, "Images", n), "rb").read(), size) for n in names])
    model(images[:batch])  # warm-up
    _, seconds = timed(lambda: [model(images[i : i + batch]).numpy() for i in range(0, len(images), batch)])
    return len(images) / seconds


def seed_way(model, names, size):
    import keras

    def one(name):
        image = keras.utils.load_img(os.path.join(FLICKR, "Images", name), target_size=(size, size))
        pixels = np.expand_dims(keras.utils.img_to_array(image), 0).astype(np.uint8)
        return model.predict(pixels, verbose=0)

    one(names[0])  # warm-up
    _, seconds = timed(lambda: [one(n) for n in names])
    return len(names) / seconds


def pipeline(names, work, batch, beam_args):
    from altvoice.pipelines import preprocess

    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "train.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    with open(os.path.join(work, "dev.txt"), "w") as f:
        f.write(split_names("dev", 1)[0] + "\n")
    argv = [
        "--captions", os.path.join(FLICKR, "Flickr8k.token.txt"), "--images", os.path.join(FLICKR, "Images"),
        "--train-split", os.path.join(work, "train.txt"), "--dev-split", os.path.join(work, "dev.txt"),
        "--output", os.path.join(work, "out"), "--backbone", "mobilenet_v2", "--image-size", "160",
        "--backbone-weights", MOBILENET_WEIGHTS, "--batch-size", str(batch), *beam_args,
    ]
    summary, seconds = timed(preprocess.run, argv)
    assert summary["splits"]["train"]["images"] == len(names), summary
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="images through the pipeline")
    parser.add_argument("--small", type=int, default=100, help="images in the start-up run")
    parser.add_argument("--seed-images", type=int, default=150, help="images through the seed's way")
    parser.add_argument("--batch-size", type=int, default=64)
    args, beam_args = parser.parse_known_args()  # the rest goes to the pipeline (e.g. --direct_num_workers 2)
    from altvoice.model.backbones import build_feature_extractor

    names = split_names("train", args.images)
    for name in names:  # the same warm file cache for every contender
        open(os.path.join(FLICKR, "Images", name), "rb").read()
    model = build_feature_extractor("mobilenet_v2", MOBILENET_WEIGHTS, 160)
    with tempfile.TemporaryDirectory() as work:
        small = pipeline(names[: args.small], os.path.join(work, "small"), args.batch_size, beam_args)
        full = pipeline(names, os.path.join(work, "full"), args.batch_size, beam_args)
    bare = bare_backbone(names, 160, args.batch_size)
    seed = seed_way(model, names[: args.seed_images], 160)
    steady = (len(names) - args.small) / (full - small)
    results = {
        "images": len(names),
        "pipeline_wall_s": round(full, 2),
        "pipeline_startup_run_s": round(small, 2),
        "pipeline_images_per_s": round(len(names) / full, 1),
        "pipeline_steady_images_per_s": round(steady, 1),
        "seed_images_per_s": round(seed, 1),
        "bare_backbone_images_per_s": round(bare, 1),
        "steady_vs_seed": round(steady / seed, 2),
        "steady_vs_bare": round(steady / bare, 2),
        "end_to_end_vs_seed": round(len(names) / full / seed, 2),
        "end_to_end_vs_bare": round(len(names) / full / bare, 2),
        "cpus": os.cpu_count(),
        "pipeline_args": " ".join(beam_args),
    }
    print(table([("measure", "value"), *results.items()]))
    print("results in", save("preprocess_throughput", results))


if __name__ == "__main__":
    main()
