"""`altvoice preprocess`: captions + images -> vocabulary, CNN features and TFRecords, in one Beam pipeline.

    split files (or the captions files they name, or without them a Karpathy JSON's own splits) --> image -> split
    captions files --ReadCaptions--> (image, caption) --route by split--> tf.transform
        (train: AnalyzeAndTransformDataset builds the vocabulary; dev/test: TransformDataset)
    images URL --ReadImages--> (name, bytes) --only listed images--> ExtractFeatures (RunInference)
    CoGroupByKey on image name --> tf.train.Example per caption --> <output>/tfrecords/<split>-*.tfrecord
                               --> tf.train.Example per image (float16 features) --> <output>/features/<split>-*.tfrecord
    every rejected input --> <output>/errors.jsonl; counts --> <output>/summary.json
"""
import json
import posixpath

import apache_beam as beam
import fsspec
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from apache_beam.options.pipeline_options import PipelineOptions
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from altvoice import progress
from altvoice.caption_files import is_karpathy
from altvoice.console import log
from altvoice.errors import ERRORS, WriteErrors, tagged_error
from altvoice.flags import UsageError, require
from altvoice.model.backbones import feature_shape as backbone_feature_shape
from altvoice.model.backbones import get_backbone, imagenet_weights_problem
from altvoice.pipelines.caption_files import SPLITS, ReadCaptions, ReadCorrections, ReadSplit
from altvoice.pipelines.features import FAILED, ExtractFeatures, FeatureExtractorHandler
from altvoice.pipelines.options import PreprocessOptions, job_pipeline_options
from altvoice.pipelines.read_images import ReadImages
from altvoice.progress import ShowProgress
from altvoice.records import make_caption_example, make_image_example
from altvoice.transforms.captions import VOCAB_FILENAME, make_preprocessing_fn

RAW_SPEC = {"image": tf.io.FixedLenFeature([], tf.string), "caption": tf.io.FixedLenFeature([], tf.string)}
TRANSFORM_DIR, COUNTS_FILE, SUMMARY_FILE, GLOVE_FILE = "transform", "counts", "summary.json", "glove_embeddings.npy"
LAUNCH_FILE = "launch.json"  # the flags of a run that did not wait for its pipeline
IMAGES = "images"  # JoinImage's output of image feature records


def caption_files(opts) -> list[str]:
    """The --captions files (a comma-separated list)."""
    return [path.strip() for path in opts.captions.split(",") if path.strip()]


def correction_files(opts) -> list[str]:
    """The --corrections files (review pages' corrections.jsonl): their alt texts are extra captions."""
    return [path.strip() for path in (opts.corrections or "").split(",") if path.strip()]


def split_files(opts) -> dict:
    files = {"train": opts.train_split, "dev": opts.dev_split, "test": opts.test_split}
    return {split: path for split, path in files.items() if path}


def split_names(opts) -> list[str]:
    """The splits written: those of the split flags, else (a Karpathy JSON's own splits) train, dev and test."""
    return list(split_files(opts)) or ["train", "dev", "test"]


class AssignSplit(beam.DoFn):
    """(name, [splits]) -> (name, split); a name listed in two splits is an error (it would leak)."""

    def process(self, element):
        name, splits = element
        unique = sorted(set(splits))
        if len(unique) > 1:
            yield tagged_error(name, "splits", "in_several_splits", f"listed in {' and '.join(unique)}")
        else:
            yield name, unique[0]


class RouteCaption(beam.DoFn):
    """(image, caption) -> a raw tf.transform instance on its split's output; others are counted."""

    def process(self, element, split_of):
        image, caption = element
        split = split_of.get(image)
        if split is None:
            yield beam.pvalue.TaggedOutput("events", "captions_not_in_split")
        else:
            yield beam.pvalue.TaggedOutput(split, {"image": image, "caption": caption})


class JoinImage(beam.DoFn):
    """One image's split, features, failure and encoded captions -> a caption record per caption (main
    output) and one image record (IMAGES output), each keyed by split."""

    def __init__(self, max_words: int):
        self.max_words = max_words

    def process(self, element):
        name, group = element
        features, captions = group["features"], group["captions"]
        if group["failed"]:
            if captions:
                yield beam.pvalue.TaggedOutput("events", "captions_dropped_bad_image")
            return
        if not features:
            if group["listed"]:
                reason = f"listed in a split with {len(captions)} caption(s), but no such image was found"
                yield tagged_error(name, "join", "missing_image", reason)
            return
        if len(features) > 1:
            yield tagged_error(name, "join", "duplicate_name", f"{len(features)} files named {name}; used one")
        if not captions:
            yield tagged_error(name, "join", "no_captions", "image listed in a split but has no captions")
            return
        emitted = 0
        for split, ids, num_words in captions:
            if num_words == 0:
                yield tagged_error(name, "join", "empty_caption", "caption has no words after cleaning")
                continue
            if num_words > self.max_words:
                yield beam.pvalue.TaggedOutput("events", "truncated_captions")
            emitted += 1
            yield beam.pvalue.TaggedOutput("events", f"{split}/captions")
            yield split, make_caption_example(name, ids, num_words)
        if emitted:
            beam.metrics.Metrics.counter("altvoice", "images_processed").inc()
            yield beam.pvalue.TaggedOutput(IMAGES, (captions[0][0], make_image_example(name, features[0])))
            yield beam.pvalue.TaggedOutput("events", f"{captions[0][0]}/images")


def encode_captions(raw_by_split: dict, opts, transform_dir: str, temp_dir: str) -> dict:
    """tf.transform: vocabulary over train only, applied to every split. Returns {split: encoded}."""
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    preprocessing_fn = make_preprocessing_fn(
        opts.min_word_count if opts.min_word_count > 1 else None, opts.max_length, opts.drop_single_letters
    )
    encoded = {}
    with tft_beam.Context(temp_dir=temp_dir):
        (encoded["train"], _), transform_fn = (
            raw_by_split["train"],
            metadata,
        ) | "AnalyzeTrain" >> tft_beam.AnalyzeAndTransformDataset(preprocessing_fn)
        for split in raw_by_split.keys() - {"train"}:
            encoded[split], _ = ((raw_by_split[split], metadata), transform_fn) | f"Transform_{split}" >> (
                tft_beam.TransformDataset()
            )
        _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(transform_dir)
    return encoded


def _as_join_entry(split):
    return lambda row: (row["image"].decode(), (split, row["caption_ids"], int(row["num_words"])))


def build_pipeline(p: beam.Pipeline, opts: PreprocessOptions) -> None:
    """Adds the whole preprocess job to `p`; nothing runs until `p.run()`."""
    out = opts.output.rstrip("/")
    spec = get_backbone(opts.backbone)
    size = opts.image_size or spec.default_size
    splits, files = split_names(opts), split_files(opts)
    named = {path: split for split, path in files.items() if path in caption_files(opts)}  # parsed once, as captions

    captions = (
        p
        | "CaptionsFile" >> beam.Create(caption_files(opts))
        | "ReadCaptions" >> beam.ParDo(ReadCaptions(named if files else None)).with_outputs(ERRORS, SPLITS, main="ok")
    )
    listed = (
        p
        | "SplitFiles" >> beam.Create(sorted((s, path) for s, path in files.items() if path not in named))
        | "ReadSplits" >> beam.ParDo(ReadSplit()).with_outputs(ERRORS, main="ok")
    )
    split_of = (
        (listed.ok, captions[SPLITS])
        | "AllListed" >> beam.Flatten()
        | "GroupSplits" >> beam.GroupByKey()
        | "AssignSplit" >> beam.ParDo(AssignSplit()).with_outputs(ERRORS, main="ok")
    )
    corrections = (
        p
        | "CorrectionsFiles" >> beam.Create(correction_files(opts))
        | "ReadCorrections" >> beam.ParDo(ReadCorrections()).with_outputs(ERRORS, main="ok")
    )
    all_captions = (captions.ok, corrections.ok) | "WithCorrections" >> beam.Flatten()
    routed = all_captions | "Route" >> beam.ParDo(RouteCaption(), beam.pvalue.AsDict(split_of.ok)).with_outputs(
        "events", *splits
    )
    encoded = encode_captions({s: routed[s] for s in splits}, opts, f"{out}/{TRANSFORM_DIR}", f"{out}/tmp")
    encoded_captions = [
        encoded[s] | f"Key_{s}" >> beam.Map(_as_join_entry(s)) for s in splits
    ] | "AllCaptions" >> beam.Flatten()

    wanted = beam.pvalue.AsDict(split_of.ok)
    progress.reset()
    images = p | "ReadImages" >> ReadImages(opts.images)
    listed_images = images["ok"] | "OnlyListed" >> beam.Filter(
        lambda item, wanted: posixpath.basename(item[0]) in wanted, wanted
    ) | "ByName" >> beam.MapTuple(lambda path, data: (posixpath.basename(path), data))
    handler = FeatureExtractorHandler(opts.backbone, opts.backbone_weights, size, opts.batch_size or 64,
                                      grid=opts.features == "grid")
    features = listed_images | "Features" >> ExtractFeatures(handler, size)
    _ = features["features"] | "Progress" >> beam.ParDo(ShowProgress("images featurized"))

    joined = (
        {
            "listed": split_of.ok,
            "captions": encoded_captions,
            "features": features["features"],
            "failed": features[FAILED] | "FailedKeys" >> beam.Map(lambda name: (name, True)),
        }
        | "JoinByImage" >> beam.CoGroupByKey()
        | "Join" >> beam.ParDo(JoinImage(opts.max_length - 2)).with_outputs(ERRORS, "events", IMAGES, main="examples")
    )
    for folder, records in (("tfrecords", joined.examples), ("features", joined[IMAGES])):
        by_split = records | f"BySplit_{folder}" >> beam.Partition(lambda item, n: splits.index(item[0]), len(splits))
        for index, split in enumerate(splits):
            _ = (
                by_split[index]
                | f"Serialized_{folder}_{split}" >> beam.Values()
                | f"Write_{folder}_{split}" >> beam.io.WriteToTFRecord(f"{out}/{folder}/{split}",
                                                                     file_name_suffix=".tfrecord")
            )

    errors = (
        captions[ERRORS], corrections[ERRORS], listed[ERRORS], split_of[ERRORS], images["errors"], features["errors"],
        joined[ERRORS],
    ) | "AllErrors" >> beam.Flatten()
    _ = errors | "WriteErrors" >> WriteErrors(f"{out}/errors")
    events = (
        routed.events,
        joined.events,
        errors | "ErrorKinds" >> beam.Map(lambda e: f"dropped/{e['kind']}"),
    ) | "AllEvents" >> beam.Flatten()
    _ = (
        events
        | "CountEvents" >> beam.combiners.Count.PerElement()
        | "ToDict" >> beam.combiners.ToDict()
        | "CountsJson" >> beam.Map(json.dumps, sort_keys=True)
        | "WriteCounts" >> beam.io.WriteToText(f"{out}/{COUNTS_FILE}", file_name_suffix=".json", shard_name_template="")
    )


def check_inputs(opts: PreprocessOptions) -> None:
    """Fails fast, before any work, on flags that can't run."""
    require(opts, *PreprocessOptions.REQUIRED)
    files = split_files(opts)
    if files:
        require(opts, "train_split", "dev_split")
    get_backbone(opts.backbone)
    fs, out = fsspec.core.url_to_fs(opts.output)
    if not opts.overwrite and fs.isdir(out) and fs.ls(out):
        raise UsageError(f"--output {opts.output} already holds files: pass --overwrite to replace them, or "
                         "another --output")
    if opts.max_length < 3:
        raise UsageError(f"--max-length must be at least 3 (<start>, a word, <end>), got {opts.max_length}")
    given = [("--captions", path) for path in caption_files(opts)] + [(f"--{s}-split", f) for s, f in files.items()]
    given += [("--corrections", path) for path in correction_files(opts)]
    for flag, path in given:
        fs, local = fsspec.core.url_to_fs(path)
        if not fs.exists(local):
            raise UsageError(f"{flag} {path}: no such file")
    if len(set(files.values())) < len(files):
        raise UsageError("--train-split, --dev-split and --test-split must name different files")
    if not files and not any(is_karpathy(path) for path in caption_files(opts)):
        raise UsageError("--train-split and --dev-split are required unless --captions has a Karpathy split JSON")
    if opts.glove:
        fs, local = fsspec.core.url_to_fs(opts.glove)
        if not fs.exists(local):
            raise UsageError(f"--glove {opts.glove}: no such file")
    if opts.backbone_weights == "imagenet" and (problem := imagenet_weights_problem(opts.backbone)):
        raise UsageError(f"--backbone {opts.backbone} needs ImageNet weights, but {problem}: pass "
                         "--backbone-weights PATH (a .weights.h5 file, local or gs://) or 'none' (random, for tests)")


def feature_shape(opts: PreprocessOptions) -> list[int]:
    return backbone_feature_shape(opts.backbone, opts.image_size, opts.features == "grid")


def write_summary(opts: PreprocessOptions) -> dict:
    """After the run: summary.json from the counts, the vocabulary and, with --glove, the embedding matrix."""
    from altvoice.pipelines.glove import write_glove_matrix

    out = opts.output.rstrip("/")
    with fsspec.open(f"{out}/{COUNTS_FILE}.json", "r") as f:
        counts = json.loads(f.read() or "{}")
    with fsspec.open(f"{out}/{TRANSFORM_DIR}/transform_fn/assets/{VOCAB_FILENAME}", "r", encoding="utf-8") as f:
        vocabulary = f.read().splitlines()
    spec = get_backbone(opts.backbone)
    summary = {
        "splits": {
            s: {"images": counts.get(f"{s}/images", 0), "captions": counts.get(f"{s}/captions", 0)}
            for s in split_names(opts)
        },
        "vocabulary_size": len(vocabulary),
        "vocabulary_file": f"{TRANSFORM_DIR}/transform_fn/assets/{VOCAB_FILENAME}",
        "min_word_count": opts.min_word_count,
        "max_length": opts.max_length,
        "drop_single_letters": opts.drop_single_letters,
        "truncated_captions": counts.get("truncated_captions", 0),
        "captions_not_in_split": counts.get("captions_not_in_split", 0),
        "captions_dropped_bad_image": counts.get("captions_dropped_bad_image", 0),
        "dropped": {k.split("/", 1)[1]: v for k, v in sorted(counts.items()) if k.startswith("dropped/")},
        "backbone": opts.backbone,
        "backbone_weights": opts.backbone_weights,
        "image_size": opts.image_size or spec.default_size,
        "feature_size": spec.feature_size,
        "features": opts.features,
        "feature_shape": feature_shape(opts),
        "feature_dtype": "float16",
        "captions": opts.captions,
        "corrections": opts.corrections,
        "images": opts.images,
    }
    if opts.glove:
        summary["glove"] = write_glove_matrix(opts.glove, vocabulary, f"{out}/{GLOVE_FILE}")
    with fsspec.open(f"{out}/{SUMMARY_FILE}", "w") as f:
        f.write(json.dumps(summary, indent=2))
    return summary


def remove_temp(output: str) -> None:
    """Deletes tf.transform's temporary files once the run is done."""
    fs, path = fsspec.core.url_to_fs(f"{output.rstrip('/')}/tmp")
    if fs.exists(path):
        fs.rm(path, recursive=True)


def run(argv=None, wait: bool = True) -> dict | None:
    """Parses flags and runs the pipeline; returns the summary.

    With `wait=False` (Flex Templates: the launcher submits the job and must not wait) the pipeline
    is handed to the runner and the flags are saved to <output>/launch.json, from which
    `write_summary_after_launch` writes summary.json once the job is done.
    """
    options = job_pipeline_options(argv, PreprocessOptions)
    opts = PipelineOptions(argv).view_as(PreprocessOptions)  # a view of its own: unset job flags stay out of the job
    check_inputs(opts)
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, opts)
    if not wait:
        with fsspec.open(f"{opts.output.rstrip('/')}/{LAUNCH_FILE}", "w") as f:
            f.write(json.dumps({"argv": list(argv or [])}, indent=2))
        pipeline.run()
        return None
    pipeline.run().wait_until_finish()
    summary = write_summary(opts)
    remove_temp(opts.output)
    log.info("preprocess done: %s", json.dumps(summary["splits"]))
    return summary


def write_summary_after_launch(output: str) -> dict:
    """summary.json of a finished job launched with wait=False, from the flags it saved."""
    try:
        with fsspec.open(f"{output.rstrip('/')}/{LAUNCH_FILE}", "r") as f:
            saved = json.load(f)
    except FileNotFoundError:
        raise UsageError(f"no {LAUNCH_FILE} in {output}: not the output of a preprocess template job") from None
    opts = PipelineOptions(saved["argv"]).view_as(PreprocessOptions)
    summary = write_summary(opts)
    remove_temp(opts.output)
    return summary
