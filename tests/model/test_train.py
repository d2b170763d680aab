"""`altvoice train`: a short run end to end, resuming, early stopping, and clear messages for bad input."""
import json
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from testdata import with_grounding

from altvoice import cli
from altvoice.flags import UsageError
from altvoice.images import decode_image
from altvoice.model import train
from altvoice.model.data import Features, load_summary
from altvoice.model.decoder import build_caption_model
from altvoice.model.decoders import build_decoder
from altvoice.model.export import load_captioner, sha256
from altvoice.model.handler import CaptionModelHandler
from altvoice.records import caption_spec, features_pattern, image_spec, make_caption_example, make_image_example, record_pattern


def test_a_run_leaves_checkpoints_logs_and_the_best_epoch_exported(trained, prepared):
    output, card = trained
    state = json.loads((output / "checkpoints" / "state.json").read_text())
    losses = [h["loss"] for h in state["history"]]
    assert state["epoch"] == 3 and [h["epoch"] for h in state["history"]] == [1, 2, 3] and losses[-1] < losses[0]
    assert sorted(p.name for p in (output / "checkpoints").glob("epoch-*.keras")) == ["epoch-003.keras"]
    assert list((output / "logs" / "train").glob("events.out.tfevents.*"))
    best = min(state["history"], key=lambda h: h["val_loss"])
    assert card["metrics"]["dev"]["loss"] == pytest.approx(best["val_loss"]) and card["training"]["best_epoch"] == best["epoch"]
    summary = load_summary(str(prepared))
    assert card["vocabulary"]["size"] == summary["vocabulary_size"] and card["backbone"]["image_size"] == 32
    assert card["decoding"] == {"beam_width": 3, "alpha": 0.9, "max_tokens": 11, "without_repeats": True,
                                "specificity": 0.0, "image_prior": "image_prior.npy",
                                "image_prior_sha256": sha256(str(output / "export" / "image_prior.npy"))}
    assert card["training"]["seed"] == 7
    exported, kept = build_decoder(card["decoder"]), build_decoder(card["decoder"])
    exported.load_weights(output / "export" / "decoder.weights.h5")
    kept.load_weights(output / "checkpoints" / "best.weights.h5")
    for a, b in zip(exported.get_weights(), kept.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_export_captions_raw_bytes_from_the_features_preprocess_made(trained, prepared, dataset):
    output, card = trained
    captioner = load_captioner(str(output / "export"), keras_backbone=True)
    files = [(dataset["root"] / "Images" / n).read_bytes() for n in dataset["dev"]]
    features = Features(str(prepared), "dev", load_summary(str(prepared)))
    stored = dict(zip([n.decode() for n in features.names], features.array))
    images = np.stack([decode_image(data, captioner.image_size) for data in files])
    np.testing.assert_allclose(captioner.extractor.predict_on_batch(images),  # stored as float16
                               np.stack([stored[n] for n in dataset["dev"]]).astype(np.float32), rtol=2e-3, atol=1e-4)
    vocabulary = set((output / "export" / "vocabulary.txt").read_text().split())
    for caption, score in captioner.caption_bytes(files):
        assert caption and set(caption.split()) <= vocabulary and np.isfinite(score) and score < 0


def test_flip_average_gives_an_export_that_averages_the_mirror_images_features(prepared, tmp_path, train_argv):
    card = train.run(train_argv(prepared, tmp_path / "run", "--epochs", "1", "--flip-average"))
    assert card["backbone"]["flip_average"] is True
    extractor = load_captioner(str(tmp_path / "run" / "export"), keras_backbone=True).extractor
    plain = load_captioner(str(tmp_path / "run" / "export"), flip_average=False).extractor  # as trained
    images = np.random.default_rng(4).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    averaged = extractor.predict_on_batch(images)
    np.testing.assert_allclose(averaged, extractor.predict_on_batch(images[:, :, ::-1]), atol=1e-5)
    expected = (plain.predict_on_batch(images) + plain.predict_on_batch(images[:, :, ::-1])) / 2
    np.testing.assert_allclose(averaged, expected, atol=1e-5)


def read_records(data, split, convert):
    summary = load_summary(str(data))
    spec = caption_spec(summary["max_length"])
    for record in tf.data.TFRecordDataset(tf.io.gfile.glob(record_pattern(str(data), split))):
        yield convert({k: v.numpy() for k, v in tf.io.parse_single_example(record, spec).items()})


def rewrite_records(data, split, change):
    """Rewrites a split's caption records through change(example dict) -> (image, ids, num_words)."""
    examples = list(read_records(data, split, change))
    for path in tf.io.gfile.glob(record_pattern(str(data), split)):
        with tf.io.TFRecordWriter(path) as writer:
            for image, ids, num_words in examples:
                writer.write(make_caption_example(image, ids, num_words))


def rewrite_features(data, split, change):
    """Rewrites a split's image records through change(image, features) -> (image, features)."""
    examples = [change(r["image"].numpy().decode(), np.frombuffer(r["features"].numpy(), np.float16))
                for r in tf.data.TFRecordDataset(tf.io.gfile.glob(features_pattern(str(data), split))).map(
                    lambda r: tf.io.parse_single_example(r, image_spec()))]
    for path in tf.io.gfile.glob(features_pattern(str(data), split)):
        with tf.io.TFRecordWriter(path) as writer:
            for image, features in examples:
                writer.write(make_image_example(image, features))


@pytest.fixture
def data(prepared, tmp_path):
    """A copy of the preprocess output to damage."""
    return shutil.copytree(prepared, tmp_path / "data")


def test_resume_continues_the_epoch_count_optimizer_and_weights(data, tmp_path, train_argv):
    output = tmp_path / "run"
    first = train.run(train_argv(data, output, "--epochs", "1"))
    first_epoch = json.loads((output / "checkpoints" / "state.json").read_text())["history"][0]
    args = train.parse(train.TrainOptions, train_argv(data, output, "--resume"), "test")
    model, state = train.resumed_model(args, load_summary(str(data)), str(output / "checkpoints"))
    exported = build_decoder(first["decoder"])
    exported.load_weights(output / "export" / "decoder.weights.h5")
    for a, b in zip(model.get_weights(), exported.get_weights()):
        np.testing.assert_array_equal(a, b)
    steps = int(model.optimizer.iterations.numpy())
    assert state["epoch"] == 1 and steps == 3  # 40 captions in batches of 16
    second = train.run(train_argv(data, output, "--epochs", "2", "--resume"))
    state = json.loads((output / "checkpoints" / "state.json").read_text())
    assert [h["epoch"] for h in state["history"]] == [1, 2] and state["history"][0] == first_epoch
    assert second["training"]["epochs"] == 2
    again = keras.models.load_model(output / "checkpoints" / "epoch-002.keras")
    assert int(again.optimizer.iterations.numpy()) == 2 * steps


def test_early_stopping_and_decay_keep_the_best_epoch_and_survive_a_restart(tmp_path):
    model = build_caption_model(10, 4, embedding_dim=3, units=4)
    train.compile_model(model, 1e-3)
    model.optimizer.build(model.trainable_variables)  # as after a training step: its state is checkpointed
    state = {"data": "d", "epoch": 0, "best_epoch": 0, "best_val_loss": None, "wait": 0, "checkpoint": None,
             "train_seconds": 0.0, "history": []}
    callback = train.Checkpointer(str(tmp_path), state, patience=2, decay=0.5)
    callback.set_model(model)
    for epoch, val_loss in enumerate([3.0, 2.0, 2.5]):
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
    assert (state["best_epoch"], state["wait"], model.stop_training) == (2, 1, False)
    restarted_model = keras.models.load_model(tmp_path / state["checkpoint"])
    restarted = train.Checkpointer(str(tmp_path), json.loads((tmp_path / "state.json").read_text()), 2, 0.5)
    restarted.set_model(restarted_model)
    restarted.on_epoch_begin(3)
    restarted.on_epoch_end(3, {"loss": 1.0, "val_loss": 2.6})
    assert restarted_model.stop_training and restarted.state["wait"] == 2 and restarted.state["best_epoch"] == 2
    assert [h["learning_rate"] for h in restarted.state["history"]] == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4])
    assert train.learning_rate(restarted_model) == pytest.approx(2.5e-4)
    assert [p.name for p in tmp_path.glob("epoch-*.keras")] == ["epoch-004.keras"]


def usage_error(argv) -> str:
    with pytest.raises(UsageError) as err:
        train.run(argv)
    return str(err.value)


def test_resume_without_a_checkpoint(data, tmp_path, train_argv):
    assert "no checkpoint" in usage_error(train_argv(data, tmp_path / "empty", "--resume"))


def test_a_second_run_into_the_same_output_must_say_resume(trained, prepared, train_argv):
    assert "pass --resume" in usage_error(train_argv(prepared, trained[0]))


def test_a_corrupt_checkpoint(trained, prepared, tmp_path, train_argv):
    output = shutil.copytree(trained[0], tmp_path / "run")
    (output / "checkpoints" / "epoch-003.keras").write_bytes(b"not a zip file")
    message = usage_error(train_argv(prepared, output, "--resume", "--epochs", "4"))
    assert "can't be loaded" in message and "delete" in message


def test_resuming_on_data_with_another_vocabulary(trained, data, tmp_path, train_argv):
    summary = json.loads((data / "summary.json").read_text())
    with open(data / summary["vocabulary_file"], "a") as f:
        f.write("zebra\n")
    summary["vocabulary_size"] += 1
    del summary["glove"]
    (data / "summary.json").write_text(json.dumps(summary))
    output = shutil.copytree(trained[0], tmp_path / "run")
    message = usage_error(train_argv(data, output, "--resume", "--epochs", "4"))
    assert f"trained on {summary['vocabulary_size'] - 1} words" in message and "new --output" in message


def test_a_missing_split(data, tmp_path, train_argv):
    for path in (data / "tfrecords").glob("dev-*"):
        path.unlink()
    assert "no dev caption records" in usage_error(train_argv(data, tmp_path / "run"))
    for path in (data / "features").glob("dev-*"):
        path.unlink()
    assert "no dev image feature records" in usage_error(train_argv(data, tmp_path / "run"))


def test_records_from_another_vocabulary(data, tmp_path, train_argv):
    rewrite_records(data, "train", lambda e: (e["image"].decode(),
                                              np.where(e["caption_ids"] > 3, 999, e["caption_ids"]), e["num_words"]))
    assert "another vocabulary" in usage_error(train_argv(data, tmp_path / "run"))


def test_records_with_another_feature_size(data, tmp_path, train_argv):
    rewrite_features(data, "dev", lambda image, features: (image, features[:64]))
    message = usage_error(train_argv(data, tmp_path / "run"))
    assert "don't match summary.json" in message and "re-run preprocess" in message


def test_captions_of_an_image_without_features(data, tmp_path, train_argv):
    rewrite_features(data, "dev", lambda image, features: (image + ".other", features))
    message = usage_error(train_argv(data, tmp_path / "run"))
    assert "have no image features" in message and "re-run preprocess" in message


def test_output_of_an_older_preprocess_is_refused(data, tmp_path, train_argv):
    summary = json.loads((data / "summary.json").read_text())
    del summary["feature_shape"]
    (data / "summary.json").write_text(json.dumps(summary))
    assert "older altvoice" in usage_error(train_argv(data, tmp_path / "run"))


def test_a_transformer_needs_grid_features(data, tmp_path, train_argv):
    message = usage_error(train_argv(data, tmp_path / "run", "--decoder", "transformer"))
    assert "--features grid" in message


def test_a_nan_loss_stops_with_advice_and_exports_nothing(data, tmp_path, train_argv):
    message = usage_error(train_argv(data, tmp_path / "run", "--learning-rate", "1e30"))
    assert "NaN" in message and "--learning-rate" in message
    assert not (tmp_path / "run" / "export").exists() and not list((tmp_path / "run" / "checkpoints").glob("*.keras"))


def test_the_cli_prints_the_message_and_exits_2(tmp_path, capsys):
    assert cli.main(["train", "--data", str(tmp_path), "--output", str(tmp_path / "run")]) == 2
    assert "no summary.json" in capsys.readouterr().err
    assert cli.main(["train", "--data", str(tmp_path), "--epochs", "0"]) == 2
    assert "--epochs" in capsys.readouterr().err
    assert "--resume" in cli.command_help("train") and "--beam-width" in cli.command_help("evaluate")


def test_a_transformer_trains_on_grid_features_and_exports_one_captioner(prepared_grid, dataset, tmp_path, train_argv):
    card = train.run(train_argv(prepared_grid, tmp_path / "run", "--decoder", "transformer", "--units", "16",
                                "--layers", "1", "--heads", "2", "--epochs", "2", "--warmup-epochs", "0.5"))
    assert card["decoder"]["kind"] == "transformer" and card["decoder"]["cells"] == 4
    assert card["backbone"]["grid"] is True
    state = json.loads((tmp_path / "run" / "checkpoints" / "state.json").read_text())
    assert state["history"][1]["loss"] < state["history"][0]["loss"]
    captioner = load_captioner(str(tmp_path / "run" / "export"))
    files = [(dataset["root"] / "Images" / n).read_bytes() for n in dataset["dev"]]
    vocabulary = set((tmp_path / "run" / "export" / "vocabulary.txt").read_text().split())
    captions = captioner.caption_bytes(files)
    assert len(captions) == len(files)
    for caption, score in captions:
        assert caption and set(caption.split()) <= vocabulary and np.isfinite(score)
    features = Features(str(prepared_grid), "dev", load_summary(str(prepared_grid)))
    stored = dict(zip([n.decode() for n in features.names], features.array))
    images = np.stack([decode_image(data, captioner.image_size) for data in files])
    np.testing.assert_allclose(captioner.features(images), np.stack([stored[n] for n in dataset["dev"]]).astype(
        np.float32), rtol=2e-3, atol=1e-3)  # the export's TFLite grid is what preprocess stored
    assert (tmp_path / "run" / "export" / "image_prior.npy").exists() and captioner.image_prior.shape == (4, 1280)
    specific = captioner.caption_bytes(files, specificity=1.0)  # reranked against the mean training image
    assert len(specific) == len(files) and all(caption for caption, _ in specific)
    grounded = load_captioner(str(with_grounding(tmp_path / "run" / "export"))).describe_bytes(files)
    assert len(grounded) == len(files) and all(g.grounding != "off" and 0 <= g.confidence <= 1 for g in grounded)
    handler = CaptionModelHandler(str(tmp_path / "run" / "export"), grounding=False)  # what the caption job runs
    found = handler.run_inference(list(images), handler.load_model())
    assert [r.inference.caption for r in found] == [caption for caption, _ in captions]
    resumed = train.run(train_argv(prepared_grid, tmp_path / "run", "--decoder", "transformer", "--epochs", "3",
                                   "--resume"))
    assert resumed["training"]["epochs"] == 3


def test_self_critical_training_continues_a_transformer_and_keeps_its_best_dev_cider(
        prepared_grid, tmp_path, train_argv):
    flags = ("--decoder", "transformer", "--units", "16", "--layers", "1", "--heads", "2", "--epochs", "1")
    card = train.run(train_argv(prepared_grid, tmp_path / "run", *flags, "--scst", "--scst-epochs", "2",
                                "--scst-samples", "3", "--scst-learning-rate", "1e-3"))
    scst = card["self_critical"]
    assert [h["epoch"] for h in scst["history"]] == [0, 1, 2] and scst["samples"] == 3
    best = max(scst["history"], key=lambda h: h["dev_cider_d"])
    assert scst["best_epoch"] == best["epoch"] and card["metrics"]["dev"]["greedy_cider_d"] == best["dev_cider_d"]
    assert all(h["seconds"] > 0 and np.isfinite(h["train_reward"]) for h in scst["history"][1:])
    again = train.run(train_argv(prepared_grid, tmp_path / "run", *flags, "--resume", "--scst", "--scst-epochs", "3",
                                 "--scst-baseline", "greedy"))
    assert [h["epoch"] for h in again["self_critical"]["history"]] == [0, 1, 2, 3]
    assert again["self_critical"]["baseline"] == "greedy" and again["self_critical"]["history"][1]["baseline"] == "mean"
    exported = train.run(train_argv(prepared_grid, tmp_path / "run", *flags, "--resume"))  # no --scst: no training,
    assert exported["self_critical"]["history"] == again["self_critical"]["history"]  # its best weights exported
    assert "was fine-tuned with --scst" in usage_error(train_argv(prepared_grid, tmp_path / "run", *flags[:-2],
                                                                  "--epochs", "2", "--resume"))


def test_self_critical_training_is_for_transformers(data, tmp_path, train_argv):
    assert "--decoder transformer" in usage_error(train_argv(data, tmp_path / "run", "--scst"))


def test_a_merge_decoder_on_grid_data_exports_a_pooled_backbone(prepared_grid, dataset, tmp_path, train_argv):
    card = train.run(train_argv(prepared_grid, tmp_path / "run", "--epochs", "1"))
    assert card["decoder"]["kind"] == "merge" and card["backbone"]["grid"] is False
    files = [(dataset["root"] / "Images" / n).read_bytes() for n in dataset["dev"]]
    assert all(caption for caption, _ in load_captioner(str(tmp_path / "run" / "export")).caption_bytes(files))
    assert "--decay is for --decoder merge" in usage_error(train_argv(
        prepared_grid, tmp_path / "other", "--decoder", "transformer", "--units", "16", "--decay", "0.5"))


def test_image_records_that_name_an_image_twice(data, tmp_path, train_argv):
    rewrite_features(data, "dev", lambda image, features: ("same.jpg", features))
    assert "name an image twice" in usage_error(train_argv(data, tmp_path / "run"))
