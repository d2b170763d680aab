"""End-to-end preprocess runs over a folder and a zip archive that hold bad files too, and over MS-COCO files."""
import json

import numpy as np
import pytest
import tensorflow as tf
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline

from testdata import SCENES, encode, scene_image
from altvoice.flags import UsageError
from altvoice.pipelines.options import PreprocessOptions
from altvoice.pipelines.preprocess import build_pipeline, check_inputs, write_summary
from altvoice.records import caption_spec, decode_features, features_pattern, image_spec, record_pattern
from altvoice.transforms.captions import clean_captions

BACKBONE = ["--backbone", "mobilenet_v2", "--image-size", "32", "--backbone-weights", "none"]


def preprocess(dataset, images: str, output, *extra):
    root = dataset["root"]
    return run_job([
        "--captions", str(root / "captions.txt"), "--images", images,
        "--train-split", str(root / "train.txt"), "--dev-split", str(root / "dev.txt"),
        "--output", str(output), *extra,
    ])


def run_job(argv):
    """Runs the preprocess job in this process; returns (images featurized, summary)."""
    argv = [*argv, "--min-word-count", "1", "--max-length", "8", *BACKBONE]
    opts = PipelineOptions(argv).view_as(PreprocessOptions)
    check_inputs(opts)
    pipeline = test_pipeline.TestPipeline(options=PipelineOptions(argv))
    build_pipeline(pipeline, opts)
    result = pipeline.run()
    result.wait_until_finish()
    featurized = result.metrics().query(MetricsFilter().with_name("images_featurized"))["counters"]
    return sum(c.committed for c in featurized), write_summary(opts)


@pytest.fixture(scope="module", params=["folder", "zip"])
def run(request, dataset, tmp_path_factory):
    source = dataset["root"] / ("Images" if request.param == "folder" else "Images.zip")
    output = tmp_path_factory.mktemp(f"prep_{request.param}")
    featurized, summary = preprocess(dataset, str(source), output, "--glove", str(dataset["root"] / "glove.txt"))
    errors = [json.loads(line) for line in (output / "errors.jsonl").read_text().splitlines()]
    return {"kind": request.param, "output": output, "featurized": featurized, "summary": summary, "errors": errors}


def test_counts_per_split(run, dataset):
    splits = run["summary"]["splits"]
    assert splits["train"] == {"images": len(dataset["train"]), "captions": 5 * len(dataset["train"])}
    assert splits["dev"] == {"images": len(dataset["dev"]), "captions": 5 * len(dataset["dev"])}
    assert run["summary"]["captions_not_in_split"] == 1
    assert run["summary"]["captions_dropped_bad_image"] == 3


def test_one_feature_computation_per_image(run, dataset):
    assert run["featurized"] == len(dataset["good"])


def test_every_bad_input_is_recorded_with_its_reason(run):
    kinds = {}
    for error in run["errors"]:
        kinds.setdefault(error["kind"], []).append(error["image"])
        assert error["reason"] and error["stage"]
    assert kinds["empty_file"] == ["empty.jpg"]
    assert kinds["corrupt_image"] == ["truncated.jpg"]
    assert kinds["not_an_image"] == ["notes.jpg"]
    assert kinds["missing_image"] == ["missing.jpg"]
    assert len(kinds["malformed_line"]) == 2
    assert len(kinds["empty_caption"]) == 2  # one empty line, one that cleans to nothing
    if run["kind"] == "zip":
        assert kinds["unsafe_path"] == ["../escape.jpg"]
    dropped = run["summary"]["dropped"]
    assert dropped == {kind: len(images) for kind, images in kinds.items()}


def test_records_read_back_with_tf_data(run, dataset):
    summary, output = run["summary"], run["output"]
    vocabulary = (output / summary["vocabulary_file"]).read_text().splitlines()
    assert vocabulary[:4] == ["<pad>", "<unk>", "<start>", "<end>"]
    spec = caption_spec(summary["max_length"])
    raw = {}
    for line in (dataset["root"] / "captions.txt").read_text().splitlines():
        key, _, text = line.partition("\t")
        raw.setdefault(key.split("#")[0], []).append(text)
    for split in ("train", "dev"):
        files = tf.io.gfile.glob(record_pattern(str(output), split))
        assert files and all("tfrecord" in f for f in files)
        records = list(tf.data.TFRecordDataset(files).map(lambda r: tf.io.parse_single_example(r, spec)))
        assert len(records) == summary["splits"][split]["captions"]
        images = list(tf.data.TFRecordDataset(tf.io.gfile.glob(features_pattern(str(output), split))).map(
            lambda r: tf.io.parse_single_example(r, image_spec())))
        names = [r["image"].numpy().decode() for r in images]
        assert len(names) == len(set(names)) == summary["splits"][split]["images"]  # features once per image
        assert {r["image"].numpy().decode() for r in records} == set(names)
        assert summary["feature_shape"] == [1280] and summary["feature_dtype"] == "float16"
        for image in images:
            assert decode_features(image["features"].numpy(), (1280,)).dtype == np.float16
        for record in records:
            assert record["caption_ids"].shape == (8,)
            image = record["image"].numpy().decode()
            ids = record["caption_ids"].numpy()
            decoded = [vocabulary[i] for i in ids if i != 0]
            cleaned = [c.decode().split() for c in clean_captions(tf.constant(raw[image])).numpy()]
            truncated = [c[:7] + ["<end>"] if len(c) > 8 else c for c in cleaned]
            if split == "train":
                assert decoded in truncated
            else:
                assert any(all(d in (w, "<unk>") for d, w in zip(decoded, c)) and len(decoded) == len(c)
                           for c in truncated)


def test_truncation_is_counted(run, dataset):
    texts = [text for name in dataset["good"] for text in SCENES[name.split("_")[0]][1]]
    words = [len(c.split()) - 2 for c in clean_captions(tf.constant(texts)).numpy()]
    assert run["summary"]["truncated_captions"] == sum(n > 6 for n in words) > 0


def test_glove_matrix_matches_vocabulary(run, dataset):
    summary, output = run["summary"], run["output"]
    vocabulary = (output / summary["vocabulary_file"]).read_text().splitlines()
    matrix = np.load(output / "glove_embeddings.npy")
    assert matrix.shape == (len(vocabulary), 8)
    glove = {line.split()[0]: np.asarray(line.split()[1:], np.float32)
             for line in (dataset["root"] / "glove.txt").read_text().splitlines()}
    for index, word in enumerate(vocabulary):
        expected = glove.get(word, np.zeros(8, np.float32)) if index >= 4 else np.zeros(8, np.float32)
        np.testing.assert_allclose(matrix[index], expected, atol=1e-4)
    assert summary["glove"]["found"] == sum(w in glove for w in vocabulary[4:])


def test_missing_split_file_is_a_usage_error(dataset, tmp_path):
    root = dataset["root"]
    argv = ["--captions", str(root / "captions.txt"), "--images", str(root / "Images"),
            "--train-split", str(root / "nope.txt"), "--dev-split", str(root / "dev.txt"), "--output", str(tmp_path)]
    with pytest.raises(UsageError, match="--train-split .*nope.txt: no such file"):
        check_inputs(PipelineOptions(argv).view_as(PreprocessOptions))
    with pytest.raises(UsageError, match="missing required option.*--images"):
        check_inputs(PipelineOptions(argv[:2]).view_as(PreprocessOptions))


def test_split_flags_are_needed_unless_a_karpathy_json_has_splits(dataset, tmp_path):
    root = dataset["root"]
    base = ["--images", str(root / "Images"), "--output", str(tmp_path / "out"), "--backbone-weights", "none"]
    train, dev, captions = str(root / "train.txt"), str(root / "dev.txt"), str(root / "captions.txt")
    cases = [
        (["--captions", captions], "--train-split and --dev-split are required unless --captions has a Karpathy"),
        (["--captions", captions, "--test-split", dev], r"missing required option\(s\): --train-split, --dev-split"),
        (["--captions", captions, "--train-split", train, "--dev-split", train], "must name different files"),
        (["--captions", f"{captions},{root / 'nope.json'}"], "--captions .*nope.json: no such file"),
    ]
    for flags, message in cases:
        with pytest.raises(UsageError, match=message):
            check_inputs(PipelineOptions(flags + base).view_as(PreprocessOptions))
    coco = tmp_path / "captions_train2014.json"  # MS-COCO captions: no splits of their own
    coco.write_text('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": []}')
    with pytest.raises(UsageError, match="required unless --captions has a Karpathy"):
        check_inputs(PipelineOptions(["--captions", str(coco), *base]).view_as(PreprocessOptions))
    karpathy = tmp_path / "dataset_flickr8k.json"
    karpathy.write_text('\n {"images": [{"filename": "a.jpg", "split": "train", "sentences": []}]}')
    check_inputs(PipelineOptions(["--captions", str(karpathy), *base]).view_as(PreprocessOptions))


def test_images_from_a_gcs_bucket(dataset, gcs, tmp_path):
    import fsspec

    fs = fsspec.filesystem("gs")
    for path in (dataset["root"] / "Images").iterdir():
        fs.pipe_file(f"{gcs[5:]}/flickr/{path.name}", path.read_bytes())
    featurized, summary = preprocess(dataset, f"{gcs}/flickr", tmp_path)
    assert featurized == len(dataset["good"])
    assert summary["splits"]["train"]["images"] == len(dataset["train"])


def write_coco(root):
    """A small MS-COCO: drawn images in train2014/ and val2014/, the official captions_*2014.json (each with
    an empty caption and an unknown image_id), Karpathy's dataset_coco.json (one empty caption) and a broken
    JSON. Karpathy splits: the train2014 images train, val2014 ones restval (train), val (dev) or test."""
    karpathy = {"red": "restval", "blue": "restval", "green": "val", "black": "val", "yellow": "test", "white": "test"}
    entries = []
    for number, folder in enumerate(["train2014", "val2014"], 1):
        (root / folder).mkdir()
        images, annotations = [], []
        for index, (scene, (color, texts)) in enumerate(SCENES.items()):
            image_id = 1000 * number + index
            name = f"COCO_{folder}_{image_id:012d}.jpg"
            (root / folder / name).write_bytes(encode(scene_image(color), "JPEG"))
            images.append({"id": image_id, "file_name": name, "width": 48, "height": 48})
            annotations += [{"id": 10 * image_id + n, "image_id": image_id, "caption": t} for n, t in enumerate(texts)]
            entries.append({"filepath": folder, "filename": name, "cocoid": image_id,
                            "split": "train" if number == 1 else karpathy[scene],
                            "sentences": [{"raw": t, "tokens": t.lower().split()} for t in texts]})
        annotations += [{"id": 1, "image_id": images[0]["id"], "caption": " "},
                        {"id": 2, "image_id": 5, "caption": "A caption of no listed image ."}]
        (root / f"captions_{folder}.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    entries[0]["sentences"].append({"raw": "", "tokens": []})
    (root / "dataset_coco.json").write_text(json.dumps({"images": entries, "dataset": "coco"}))
    (root / "broken.json").write_text('{"images": [{"id": 1, "file_name": "a.jpg"')


@pytest.mark.parametrize("layout", ["karpathy", "official"])
def test_coco_caption_files(layout, tmp_path):
    root = tmp_path / "coco"
    root.mkdir()
    write_coco(root)
    if layout == "karpathy":  # the splits come from dataset_coco.json
        flags = ["--captions", f"{root / 'dataset_coco.json'},{root / 'broken.json'}"]
        ids = {"train": [*range(1000, 1006), 2000, 2001], "dev": [2002, 2003], "test": [2004, 2005]}
        dropped = {"empty_caption": 1, "malformed_json": 1}
    else:  # the split flags name the captions files
        train, val = root / "captions_train2014.json", root / "captions_val2014.json"
        flags = ["--captions", f"{train},{val},{root / 'broken.json'}",
                 "--train-split", str(train), "--dev-split", str(val)]
        ids = {"train": range(1000, 1006), "dev": range(2000, 2006)}
        dropped = {"empty_caption": 2, "unknown_image_id": 2, "malformed_json": 1}
    featurized, summary = run_job([*flags, "--images", str(root), "--output", str(tmp_path / "prep")])
    assert featurized == 12
    assert summary["splits"] == {split: {"images": len(i), "captions": 5 * len(i)} for split, i in ids.items()}
    assert summary["dropped"] == dropped and summary["captions_not_in_split"] == 0
    spec = caption_spec(summary["max_length"])
    for split, image_ids in ids.items():
        files = tf.io.gfile.glob(record_pattern(str(tmp_path / "prep"), split))
        names = [r["image"].numpy().decode() for r in tf.data.TFRecordDataset(files).map(
            lambda r: tf.io.parse_single_example(r, spec))]
        assert len(names) == 5 * len(image_ids)
        assert set(names) == {f"COCO_{'train' if i < 2000 else 'val'}2014_{i:012d}.jpg" for i in image_ids}


def test_an_output_that_holds_files_is_refused_unless_overwrite(dataset, tmp_path):
    root = dataset["root"]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("an earlier run")
    argv = ["--captions", str(root / "captions.txt"), "--images", str(root / "Images"), "--train-split",
            str(root / "train.txt"), "--dev-split", str(root / "dev.txt"), "--output", str(tmp_path / "out"),
            "--backbone-weights", "none"]
    with pytest.raises(UsageError, match="already holds files: pass --overwrite"):
        check_inputs(PipelineOptions(argv).view_as(PreprocessOptions))
    check_inputs(PipelineOptions(argv + ["--overwrite"]).view_as(PreprocessOptions))


def test_imagenet_weights_that_cant_be_fetched_are_named_at_launch(tmp_path, monkeypatch):
    from altvoice.model.backbones import imagenet_weights_problem

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # nothing cached
    assert "not cached" in imagenet_weights_problem("inception_v3", host="weights.invalid")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"cached")
    assert imagenet_weights_problem("inception_v3", host="weights.invalid") is None


def test_reviewed_alt_texts_become_extra_training_captions(dataset, tmp_path):
    image = dataset["train"][0]
    fixes = tmp_path / "corrections.jsonl"
    fixes.write_text("\n".join([
        json.dumps({"version": 1, "image": image, "alt_text": "A zebra by a lighthouse.", "decision": "approved"}),
        json.dumps({"version": 1, "image": dataset["train"][1], "decision": "rejected"}),  # no text: nothing added
        "{not json",
    ]) + "\n")
    _, summary = preprocess(dataset, str(dataset["root"] / "Images"), tmp_path / "out", "--corrections", str(fixes))
    assert summary["splits"]["train"]["captions"] == 5 * len(dataset["train"]) + 1
    vocabulary = (tmp_path / "out" / summary["vocabulary_file"]).read_text().split()
    assert {"zebra", "lighthouse"} <= set(vocabulary)
    errors = [json.loads(line) for line in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert [(e["image"], e["stage"]) for e in errors if e["stage"] == "corrections"] == [
        ("corrections line 3", "corrections")]
