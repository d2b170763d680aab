"""Where the caption job's CPU goes: each stage timed alone, in one process, on the same Flickr8k photos.

    .venv/bin/python bench/caption_profile.py [--images 300] [--tts piper]

CPU-seconds (user + system of the whole process, every thread, and its children) per photo for each stage of
`altvoice caption` with the bundled model, TensorFlow and TFLite on one thread as in a caption worker that
speaks with a local voice: reading the files, decoding them (to 160 and 224 pixels), the backbone
with and without flip averaging, the object classifier and word detectors, the five decoders'
beam search against one decoder's, grounding (its checks, re-decodings and confidence), and speech
per distinct sentence (Piper on one thread, espeak-ng). Then, in fresh processes, start-up (the job
and the plain loop on one photo) and Beam's own cost (the job against bench/plain_loop.py on all
the photos without speech: the difference is what Beam adds per photo).
"""
import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.caption_throughput import image_folder  # noqa: E402
from bench.common import measure  # noqa: E402
from bench.common import save, table  # noqa: E402


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (espeak-ng runs as one)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def cpu(fn, *args):
    """(result, CPU-seconds of this process and its children) of one call."""
    start = cpu_seconds()
    result = fn(*args)
    return result, cpu_seconds() - start


def stages(folder: str, batch: int, tts: str) -> dict:
    """CPU-seconds per photo of each stage, in this process."""
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from altvoice.images import decode_sizes
    from altvoice.model.backbones import TFLiteBackbone, to_tflite
    from altvoice.model.decoders import make_decoder
    from altvoice.model.export import pooled
    from altvoice.model.decoding import beam_search, without_repeats
    from altvoice.model.export import BUNDLED_MODEL, load_captioner
    from altvoice.tts import get_synthesizer

    model, load = cpu(lambda: load_captioner(BUNDLED_MODEL, batch, threads=1))
    graph = load_captioner(BUNDLED_MODEL, batch, keras_backbone=True)  # the backbone as TensorFlow's graph
    with tempfile.TemporaryDirectory() as work:  # one pass, no flip averaging, as TFLite too
        with open(os.path.join(work, "flipless.tflite"), "wb") as f:
            f.write(to_tflite(load_captioner(BUNDLED_MODEL, flip_average=False).extractor))
        flipless = TFLiteBackbone(os.path.join(work, "flipless.tflite"), threads=1)
    names = sorted(os.listdir(folder))
    count = len(names)
    data, read = cpu(lambda: [open(os.path.join(folder, n), "rb").read() for n in names])
    decoded, decode = cpu(lambda: [decode_sizes(d, (model.image_size, 224)) for d in data])
    pixels, objects = np.stack([p for p, _ in decoded]), np.stack([o for _, o in decoded])
    batches = [slice(i, i + batch) for i in range(0, count, batch)]
    settings = model.card["decoding"]
    one = make_decoder(model.decoder_models[:1])
    one_step, one_start = without_repeats(one.step, model.vocabulary)

    def warm(fn):  # each compiled function traced before it is timed
        fn(batches[-1])
        return cpu(lambda: [fn(b) for b in batches])

    features, backbone = warm(lambda b: model.features(pixels[b]))
    features = np.concatenate(features)
    _, backbone_flipless = warm(lambda b: flipless(pixels[b]))
    _, backbone_graph = warm(lambda b: graph.features(pixels[b]))
    _, classifier = cpu(lambda: [model.classifier.classify(objects[b]) for b in batches])
    _, detectors = cpu(lambda: [model.detectors(pooled(features[b])) for b in batches])
    _, five = warm(lambda b: beam_search(model.step, model._start(model.decoder.encode(features[b])),
                                         settings["max_tokens"], settings["beam_width"], settings["alpha"]))
    _, single = warm(lambda b: beam_search(one_step, one_start(one.encode(features[b])),
                                           settings["max_tokens"], settings["beam_width"], settings["alpha"]))
    searched = [(beam_search(model.step, state, settings["max_tokens"], settings["beam_width"], settings["alpha"]),
                 state, model.classifier.evidence(objects[b], model.detectors(pooled(features[b]))))
                for b in batches for state in [model._start(model.decoder.encode(features[b]))]]
    _, grounding = cpu(lambda: [model._ground(list(found), state, evidence, None, None, None)
                                for found, state, evidence in searched])
    described, describe = cpu(lambda: [g for b in batches for g in model.describe_images(pixels[b], objects[b])])
    sentences = sorted({g.caption for g in described if g.caption})
    per_photo = {
        "read": read, "decode (160 and 224 px)": decode, "backbone, flip-averaged, TFLite (the model's)": backbone,
        "backbone, one pass (no flip averaging), TFLite": backbone_flipless,
        "backbone, flip-averaged, TensorFlow graph (before)": backbone_graph, "object classifier (TFLite)": classifier,
        "word detectors": detectors, "beam search, five decoders (the model's)": five,
        "beam search, one decoder": single, "grounding: checks, re-decodings, confidence": grounding,
        "describe in all (backbone, classifier, detectors, search, grounding)": describe,
    }
    result = {name: round(seconds / count, 5) for name, seconds in per_photo.items()}
    result["load the model (CPU-s, once)"] = round(load, 2)
    result["distinct sentences"] = len(sentences)
    for backend in dict.fromkeys([tts, "espeak"]):
        synthesizer = get_synthesizer(backend)
        synthesizer.use_threads(1)
        synthesizer.synthesize(sentences[0])
        _, seconds = cpu(lambda: [synthesizer.synthesize(s) for s in sentences])
        result[f"speech, {backend}, per sentence"] = round(seconds / len(sentences), 5)
    return result


def processes(work: str, folder: str, tts: str) -> dict:
    """Start-up and Beam's cost per photo, from fresh processes (CPU-seconds from wait4)."""
    one = image_folder(os.path.join(work, "one"), 1)
    job = lambda images, out, voice: [sys.executable, "-m", "altvoice.cli", "caption", "--input", images,  # noqa: E731
                                      "--output", os.path.join(work, out), "--tts", voice]
    loop = lambda images, out, voice: [sys.executable, os.path.join(HERE, "plain_loop.py"),  # noqa: E731
                                       "--input", images, "--output", os.path.join(work, out), "--tts", voice]
    count = len(os.listdir(folder))
    found = {}
    for name, command in (("job", job), ("loop", loop)):
        found[f"{name}, one photo, {tts}"] = measure(command(one, f"{name}-one", tts))[1]
        found[f"{name}, one photo, no speech"] = measure(command(one, f"{name}-one-quiet", "none"))[1]
        found[f"{name}, {count} photos, no speech"] = measure(command(folder, f"{name}-all-quiet", "none"))[1]
    result = {f"{name} (CPU-s)": round(seconds, 1) for name, seconds in found.items()}
    beam = ((found[f"job, {count} photos, no speech"] - found["job, one photo, no speech"])
            - (found[f"loop, {count} photos, no speech"] - found["loop, one photo, no speech"]))
    result["Beam per photo beyond the loop (CPU-s)"] = round(beam / (count - 1), 4)
    result["Beam start-up beyond the loop (CPU-s)"] = round(
        found["job, one photo, no speech"] - found["loop, one photo, no speech"], 1)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--tts", default="piper")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        folder = image_folder(work, args.images)
        results = {"images": args.images, "batch_size": args.batch_size, "cpus": os.cpu_count(),
                   "per photo, in process (CPU-s)": stages(folder, args.batch_size, args.tts),
                   "processes": processes(work, folder, args.tts)}
    for section in ("per photo, in process (CPU-s)", "processes"):
        print(table([("measure", "value"), *results[section].items()]))
    print("results in", save("caption_profile", results))


if __name__ == "__main__":
    sys.exit(main())
