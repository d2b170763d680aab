"""End-to-end preprocess runs over a folder and a zip archive that hold bad files too."""
import json

import numpy as np
import pytest
import tensorflow as tf
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline

from testdata import SCENES
from altvoice.records import feature_spec, record_pattern
from pipelines.options import PreprocessOptions, UsageError
from pipelines.preprocess import build_pipeline, check_inputs, write_summary
from transforms.captions import clean_captions

BACKBONE = ["--backbone", "mobilenet_v2", "--image-size", "32", "--backbone-weights", "none"]


def preprocess(dataset, images: str, output, *extra):
    root = dataset["root"]
    argv = [
        "--captions", str(root / "captions.txt"), "--images", images,
        "--train-split", str(root / "train.txt"), "--dev-split", str(root / "dev.txt"),
        "--output", str(output), "--min-word-count", "1", "--max-length", "8", *BACKBONE, *extra,
    ]
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
    spec = feature_spec(summary["feature_size"], summary["max_length"])
    raw = {}
    for line in (dataset["root"] / "captions.txt").read_text().splitlines():
        key, _, text = line.partition("\t")
        raw.setdefault(key.split("#")[0], []).append(text)
    for split in ("train", "dev"):
        files = tf.io.gfile.glob(record_pattern(str(output), split))
        assert files and all("tfrecord" in f for f in files)
        records = list(tf.data.TFRecordDataset(files).map(lambda r: tf.io.parse_single_example(r, spec)))
        assert len(records) == summary["splits"][split]["captions"]
        for record in records:
            assert record["features"].shape == (1280,) and record["caption_ids"].shape == (8,)
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


def test_images_from_a_gcs_bucket(dataset, gcs, tmp_path):
    import fsspec

    fs = fsspec.filesystem("gs")
    for path in (dataset["root"] / "Images").iterdir():
        fs.pipe_file(f"{gcs[5:]}/flickr/{path.name}", path.read_bytes())
    featurized, summary = preprocess(dataset, f"{gcs}/flickr", tmp_path)
    assert featurized == len(dataset["good"])
    assert summary["splits"]["train"]["images"] == len(dataset["train"])
