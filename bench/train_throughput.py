"""Training throughput: teacher forcing vs the seed's prefix expansion, same model, same machine, same run.

    .venv/bin/python bench/train_throughput.py --data /tmp/flickr8k-prep/out   # a preprocess output
    .venv/bin/python bench/train_throughput.py                                 # synthetic Flickr8k-shaped records

  teacher    `altvoice train`'s way: caption_dataset batches (length-bucketed, cut to the longest caption),
             every position of a caption predicted in one pass of model.fit;
  seed       each caption expanded into one (image, prefix padded to max_length - 1, next word) sample
             per word, fed to model.fit on the per-prefix view of the same model (model.decoder.prefix_model),
             at two batch sizes; the faster one is the baseline.
Both start from the same initial weights; captions/s counts captions whose every word was trained on once.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.common import save, table, timed  # noqa: E402

VOCAB, FEATURES, MAX_LENGTH = 2535, 1280, 40  # Flickr8k with MobileNetV2 and --min-word-count 5


def synthetic_data(directory: str, count: int) -> str:
    """Records of realistic shape: Flickr8k's caption lengths (about 11 words, a long tail), random ids."""
    import json

    import tensorflow as tf

    from altvoice.records import make_caption_example, make_image_example

    rng = np.random.default_rng(0)
    os.makedirs(f"{directory}/tfrecords")
    os.makedirs(f"{directory}/features")
    images = (count + 4) // 5  # five captions an image, as Flickr8k
    with tf.io.TFRecordWriter(f"{directory}/features/train-00000-of-00001.tfrecord") as writer:
        for index in range(images):
            writer.write(make_image_example(f"{index}.jpg", rng.random(FEATURES, np.float32)))
    with tf.io.TFRecordWriter(f"{directory}/tfrecords/train-00000-of-00001.tfrecord") as writer:
        for index in range(count):
            words = int(np.clip(rng.gamma(6.0, 11.0 / 6.0), 1, MAX_LENGTH - 2))
            ids = np.zeros(MAX_LENGTH, np.int64)
            ids[: words + 2] = [2, *rng.integers(4, VOCAB, words), 3]
            writer.write(make_caption_example(f"{index // 5}.jpg", ids, words))
    with open(f"{directory}/summary.json", "w") as f:
        json.dump({"vocabulary_size": VOCAB, "feature_size": FEATURES, "max_length": MAX_LENGTH,
                   "feature_shape": [FEATURES]}, f)
    return directory


def seed_samples(data: str, summary: dict, count: int):
    """The seed's expansion of the first `count` captions: (features, padded prefix) -> next word."""
    import tensorflow as tf

    from altvoice.model.data import Features
    from altvoice.records import caption_spec, record_pattern

    spec = caption_spec(summary["max_length"])
    stored = Features(data, "train", summary)
    features, prefixes, targets = [], [], []
    records = tf.data.TFRecordDataset(tf.io.gfile.glob(record_pattern(data, "train"))).take(count)
    for record in records:
        example = tf.io.parse_single_example(record, spec)
        ids = example["caption_ids"].numpy().astype(np.int32)
        vector = stored.array[int(stored.rows(example["image"][None])[0])].astype(np.float32)
        if vector.ndim == 2:  # a grid: the merge decoder takes its mean
            vector = vector.mean(axis=0)
        for t in range(1, np.count_nonzero(ids)):
            features.append(vector)
            prefixes.append(np.r_[ids[:t], np.zeros(len(ids) - 1 - t, np.int32)])
            targets.append(ids[t])
    return [np.stack(features), np.stack(prefixes)], np.array(targets)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="preprocess output directory (default: synthetic records)")
    parser.add_argument("--captions", type=int, default=6400, help="captions trained on, teacher forcing")
    parser.add_argument("--seed-captions", type=int, default=960, help="captions trained on, seed's way")
    parser.add_argument("--batch-size", type=int, default=64, help="captions per step, teacher forcing")
    args = parser.parse_args()

    import keras

    from altvoice.model.data import caption_dataset, load_summary
    from altvoice.model.decoder import build_caption_model, prefix_model
    from altvoice.model.train import compile_model

    data = args.data or synthetic_data(tempfile.mkdtemp(prefix="altvoice-bench-"), args.captions)
    summary = load_summary(data)
    keras.utils.set_random_seed(0)
    model = build_caption_model(summary["vocabulary_size"], summary["feature_size"])
    initial = model.get_weights()
    rows = [("way", "batch", "captions", "seconds", "captions/s")]
    results = {"data": args.data or "synthetic", "vocabulary_size": summary["vocabulary_size"]}

    compile_model(model, 1e-3)
    steps = args.captions // args.batch_size
    batches = caption_dataset(data, "train", summary, args.batch_size, shuffle=True, seed=0, pooled=True).repeat()
    model.fit(batches, steps_per_epoch=3, verbose=0, shuffle=False)  # tracing and pipeline start-up, not timed
    model.set_weights(initial)
    _, seconds = timed(model.fit, batches, steps_per_epoch=steps, verbose=0, shuffle=False)
    teacher = steps * args.batch_size / seconds
    rows.append(("teacher", args.batch_size, steps * args.batch_size, round(seconds, 1), round(teacher)))
    results["teacher"] = {"batch_size": args.batch_size, "captions": steps * args.batch_size,
                          "seconds": seconds, "captions_per_s": teacher}

    x, y = seed_samples(data, summary, args.seed_captions)
    results["seed"] = []
    for batch in (64, 256):
        seed_model = prefix_model(model)
        seed_model.compile(optimizer=keras.optimizers.Adam(1e-3),
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        seed_model.fit([a[: 3 * batch] for a in x], y[: 3 * batch], batch_size=batch, verbose=0)
        model.set_weights(initial)
        _, seconds = timed(seed_model.fit, x, y, batch_size=batch, verbose=0, shuffle=True)
        rate = args.seed_captions / seconds
        rows.append(("seed", batch, args.seed_captions, round(seconds, 1), round(rate)))
        results["seed"].append({"batch_size": batch, "samples": len(y), "captions": args.seed_captions,
                                "seconds": seconds, "captions_per_s": rate})
    best_seed = max(r["captions_per_s"] for r in results["seed"])
    results["speedup"] = teacher / best_seed
    print(table(rows))
    print(f"teacher forcing / best seed: {results['speedup']:.1f}x  ({len(y) / args.seed_captions:.1f} seed samples "
          f"per caption)   -> {save('train_throughput', results)}")


if __name__ == "__main__":
    main()
