"""Both jobs on Beam's multi-processing DirectRunner against gs:// paths on the GCS emulator.

Each bundle may run in another worker process, as on Dataflow: whatever doesn't pickle, or lives in
one process only (a model, a client, an environment variable set in-process), fails here.
"""
import json

import fsspec

from testdata import bad_images, good_images

MULTI = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def test_caption_gs_to_gs_in_two_worker_processes(dataset, tiny_model, worker_credentials):
    from altvoice.pipelines import caption

    bucket, fs = worker_credentials["bucket"], fsspec.filesystem("gs")
    for path in (dataset["root"] / "Images").iterdir():
        fs.pipe_file(f"{bucket[5:]}/multi/photos/{path.name}", path.read_bytes())
    counts = caption.run(["--input", f"{bucket}/multi/photos", "--output", f"{bucket}/multi/described",
                          "--model", str(tiny_model), "--tts", "espeak", "--batch-size", "4", *MULTI])
    assert counts == {"written": len(good_images()), "failed": len(bad_images()) - 1, "not_an_image": 1}  # notes.jpg
    out = f"{bucket[5:]}/multi/described"
    for name in good_images():
        record = json.loads(fs.cat_file(f"{out}/{name}.json"))
        assert record["caption"] and record["alt_text"].endswith(".") and record["audio"] == f"{name}.wav"
        assert fs.cat_file(f"{out}/{name}.wav")[:4] == b"RIFF"
    errors = [json.loads(line) for line in fs.cat_file(f"{out}/errors.jsonl").splitlines()]
    assert sorted(e["image"] for e in errors) == sorted(bad_images())
    # the workers found credentials at once, where Dataflow workers do, instead of retrying for ~30 s
    assert any(path.endswith("/token") for path in worker_credentials["requests"])


def test_preprocess_gs_images_in_two_worker_processes(dataset, worker_credentials, tmp_path):
    from altvoice.pipelines import preprocess

    bucket, fs, root = worker_credentials["bucket"], fsspec.filesystem("gs"), dataset["root"]
    for path in (root / "Images").iterdir():
        fs.pipe_file(f"{bucket[5:]}/multi/flickr/{path.name}", path.read_bytes())
    summary = preprocess.run([
        "--captions", str(root / "captions.txt"), "--images", f"{bucket}/multi/flickr",
        "--train-split", str(root / "train.txt"), "--dev-split", str(root / "dev.txt"),
        "--output", str(tmp_path / "prep"), "--backbone", "mobilenet_v2", "--image-size", "32",
        "--backbone-weights", "none", "--min-word-count", "1", "--max-length", "8", *MULTI,
    ])
    assert summary["splits"]["train"] == {"images": len(dataset["train"]), "captions": 5 * len(dataset["train"])}
    assert summary["splits"]["dev"] == {"images": len(dataset["dev"]), "captions": 5 * len(dataset["dev"])}
    assert summary["dropped"]["missing_image"] == 1 and summary["captions_dropped_bad_image"] == 3
    vocabulary = (tmp_path / "prep" / summary["vocabulary_file"]).read_text().splitlines()
    assert len(vocabulary) == summary["vocabulary_size"] > 4
    assert list((tmp_path / "prep" / "tfrecords").glob("train-*.tfrecord"))
