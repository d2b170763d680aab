"""`altvoice train`: teacher-forced training of a decoder (merge or transformer) on preprocess output, then export.

    <output>/checkpoints/epoch-NNN.keras   the last finished epoch: model and optimizer (for --resume)
    <output>/checkpoints/best.weights.h5   the weights with the lowest dev loss so far
    <output>/checkpoints/state.json        epoch counter, early-stopping state, history
    <output>/checkpoints/scst/             --scst: self-critical fine-tuning of the best epoch (model.scst)
    <output>/logs/                         TensorBoard
    <output>/export/                       the captioner, see model.export (best epoch's weights)
"""
import json
import math
import time

import keras
import tensorflow as tf

from altvoice.console import log
from altvoice.flags import TrainOptions, UsageError, parse
from altvoice.model.backbones import build_feature_extractor
from altvoice.model.data import Features, caption_dataset, load_glove, load_summary, read_vocabulary, scan_split
from altvoice.model.decoder import build_caption_model
from altvoice.model.decoders import decoder_config, is_transformer
from altvoice.model.objectives import SmoothedCrossEntropy, WarmupSchedule
from altvoice.model.scst import STATE_FILE as SCST_STATE
from altvoice.model.scst import train_scst
from altvoice.model.transformer import build_transformer_model
from altvoice.model.decoding import DEFAULT_ALPHA
from altvoice.model.export import export_captioner
from altvoice.transforms.captions import PAD_ID

STATE_FILE, BEST_FILE = "state.json", "best.weights.h5"
LEARNING_RATE = {"merge": 1e-3, "transformer": 5e-4}
SCST_NEEDS_TRANSFORMER = "--scst fine-tunes a transformer: train with --decoder transformer"


def compile_model(model: keras.Model, learning_rate: float) -> None:
    """Adam on the mean cross-entropy over real (non-padding) target tokens."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID),
        jit_compile=False,  # batches are cut to their longest caption: XLA would recompile for each length
    )


def compile_transformer(model: keras.Model, peak: float, warmup_steps: int, smoothing: float) -> None:
    """Adam (beta2 0.98, gradients clipped at norm 1) with a warm-up schedule, on the label-smoothed loss."""
    model.compile(optimizer=keras.optimizers.Adam(WarmupSchedule(peak, warmup_steps), beta_2=0.98, clipnorm=1.0),
                  loss=SmoothedCrossEntropy(smoothing), jit_compile=False)


class Checkpointer(keras.callbacks.Callback):
    """Per epoch: checkpoint, best weights and state.json. On an epoch without a better dev loss the learning
    rate is multiplied by `decay`; after `patience` such epochs in a row training stops. Survives --resume."""

    def __init__(self, directory: str, state: dict, patience: int, decay: float = 1.0):
        super().__init__()
        self.directory, self.state, self.patience, self.decay = directory, state, patience, decay

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        loss, val_loss = (logs or {}).get("loss"), (logs or {}).get("val_loss")
        if not (loss is not None and val_loss is not None and math.isfinite(loss) and math.isfinite(val_loss)):
            return  # a NaN epoch (TerminateOnNaN stops the run): keep the last good checkpoint
        state, rate = self.state, learning_rate(self.model)
        if state["best_val_loss"] is None or val_loss < state["best_val_loss"]:
            state.update(best_val_loss=float(val_loss), best_epoch=epoch + 1, wait=0)
            self.model.save_weights(f"{self.directory}/{BEST_FILE}")
        else:
            state["wait"] += 1
            if self.decay != 1.0:
                self.model.optimizer.learning_rate = rate * self.decay
        previous, state["checkpoint"] = state["checkpoint"], f"epoch-{epoch + 1:03d}.keras"
        self.model.save(f"{self.directory}/{state['checkpoint']}")
        state["epoch"] = epoch + 1
        state["train_seconds"] = round(state["train_seconds"] + time.time() - self.started, 1)
        state["history"].append({"epoch": epoch + 1, "loss": float(loss), "val_loss": float(val_loss),
                                 "learning_rate": rate})
        write_state(self.directory, state)
        if previous and previous != state["checkpoint"]:
            tf.io.gfile.remove(f"{self.directory}/{previous}")
        if state["wait"] >= self.patience:
            log.info("no better dev loss for %d epochs: stopping (best epoch %d)", state["wait"], state["best_epoch"])
            self.model.stop_training = True


def learning_rate(model: keras.Model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def write_state(directory: str, state: dict) -> None:
    with tf.io.gfile.GFile(f"{directory}/{STATE_FILE}.tmp", "w") as f:
        f.write(json.dumps(state, indent=2))
    tf.io.gfile.rename(f"{directory}/{STATE_FILE}.tmp", f"{directory}/{STATE_FILE}", overwrite=True)


def new_model(args, summary: dict, directory: str, steps_per_epoch: int) -> tuple[keras.Model, dict]:
    if tf.io.gfile.exists(f"{directory}/{STATE_FILE}"):
        raise UsageError(f"--output {args.output} already holds a training run: pass --resume to continue it, "
                         "or choose another --output")
    glove = load_glove(args.data, summary, args.seed)
    if args.decoder == "transformer":
        cells, feature_size = summary["feature_shape"]
        model = build_transformer_model(
            summary["vocabulary_size"], feature_size, cells, glove, args.embedding_dim, True, layers=args.layers,
            units=args.units, heads=args.heads, ff_units=4 * args.units, dropout=args.dropout,
            max_length=summary["max_length"])
        compile_transformer(model, args.learning_rate or LEARNING_RATE["transformer"],
                            round(args.warmup_epochs * steps_per_epoch), args.label_smoothing)
    else:
        model = build_caption_model(summary["vocabulary_size"], summary["feature_size"], args.embedding_dim,
                                    args.units, args.image_dropout, args.text_dropout, glove, args.train_embeddings)
        compile_model(model, args.learning_rate or LEARNING_RATE["merge"])
    state = {"data": args.data, "epoch": 0, "best_epoch": 0, "best_val_loss": None, "wait": 0,
             "checkpoint": None, "train_seconds": 0.0, "history": []}
    return model, state


def resumed_model(args, summary: dict, directory: str) -> tuple[keras.Model, dict]:
    state_path = f"{directory}/{STATE_FILE}"
    if not tf.io.gfile.exists(state_path):
        raise UsageError(f"--resume: no checkpoint in {directory} ({STATE_FILE} is missing); "
                         "train without --resume to start a new run")
    try:
        with tf.io.gfile.GFile(state_path) as f:
            state = json.load(f)
        checkpoint = f"{directory}/{state['checkpoint']}"
        model = keras.models.load_model(checkpoint)
    except Exception as err:  # a damaged file fails in many ways (zip, h5, json, config); all mean the same here
        raise UsageError(f"--resume: the checkpoint in {directory} can't be loaded ({type(err).__name__}: {err}); "
                         f"delete {directory} to train from scratch, or pass another --output") from None
    config = decoder_config(model)
    if (config["vocab_size"], config["feature_size"]) != (summary["vocabulary_size"], summary["feature_size"]):
        raise UsageError(
            f"--resume: the checkpoint was trained on {config['vocab_size']} words and {config['feature_size']} "
            f"features, but --data {args.data} has {summary['vocabulary_size']} words and {summary['feature_size']} "
            f"features; resume with the data it was trained on ({state['data']}) or train into a new --output"
        )
    if args.learning_rate and is_transformer(model):
        raise UsageError("--resume of a transformer keeps its warm-up schedule: leave out --learning-rate")
    if args.learning_rate:
        model.optimizer.learning_rate = args.learning_rate
    log.info("resuming after epoch %d (architecture and optimizer from %s)", state["epoch"], checkpoint)
    return model, state


def image_prior(features: Features, pooled: bool):
    """The mean training image's features, as the export's decoder takes them."""
    mean = features.array.mean(axis=0, dtype="float32")
    return mean.mean(axis=0) if pooled and mean.ndim == 2 else mean


def check_new_run(args, summary: dict) -> None:
    """UsageError, before any data is read, for a new run's flags that can't work together."""
    if args.decoder == "merge" and args.scst:
        raise UsageError(SCST_NEEDS_TRANSFORMER)
    if args.decoder == "transformer" and "feature_shape" in summary and len(summary["feature_shape"]) != 2:
        raise UsageError(f"--decoder transformer attends over the image grid, but --data {args.data} holds "
                         "pooled features: run preprocess with --features grid")


def check_flags(args, summary: dict, model: keras.Model) -> None:
    """UsageError for flags the (new or resumed) decoder can't use, or data it can't train on."""
    if not is_transformer(model):
        if args.scst:
            raise UsageError(SCST_NEEDS_TRANSFORMER)
        return
    if args.decay != 1.0:
        raise UsageError("--decay is for --decoder merge: the transformer's learning rate follows its warm-up "
                         "schedule (--warmup-epochs)")
    cells = decoder_config(model)["cells"]
    if len(summary["feature_shape"]) != 2 or summary["feature_shape"][0] != cells:
        raise UsageError(f"the transformer attends over a grid of {cells} cells, but --data {args.data} holds "
                         f"features of shape {summary['feature_shape']}: resume on the data it was trained on")
    if args.scst and args.scst_baseline == "mean" and args.scst_samples < 2:
        raise UsageError("--scst-baseline mean needs --scst-samples 2 or more (the mean of the other samples)")


def backbone_for_export(args, summary: dict, grid: bool) -> tuple[keras.Model, str]:
    """The backbone the features came from (as the decoder takes them: a grid or the pooled vector), built
    before training so that a bad weights path fails fast."""
    weights = args.backbone_weights or summary["backbone_weights"]
    try:
        extractor = build_feature_extractor(summary["backbone"], weights, summary["image_size"], args.flip_average,
                                            grid=grid)
    except Exception as err:  # keras raises OSError, ValueError or a download error for a bad weights source
        raise UsageError(f"backbone weights {weights!r} can't be loaded ({err}); pass --backbone-weights with "
                         "the file preprocess used") from None
    if weights in ("none", ""):
        log.warning("the backbone has random weights (preprocess ran with --backbone-weights none): "
                        "the export's captions of raw images are meaningless")
    return extractor, weights


def run(argv=None) -> dict:
    """Trains (or resumes), keeps the best dev epoch, exports; returns the model card."""
    args = parse(TrainOptions, argv, "altvoice train")
    summary = load_summary(args.data)
    vocabulary = read_vocabulary(args.data, summary)
    if not args.resume:
        check_new_run(args, summary)
    features = {split: Features(args.data, split, summary) for split in ("train", "dev")}
    sizes = {split: scan_split(args.data, split, summary, features[split]) for split in ("train", "dev")}
    if args.seed is not None:
        keras.utils.set_random_seed(args.seed)
    out = args.output.rstrip("/")
    directory = f"{out}/checkpoints"
    steps_per_epoch = math.ceil(sizes["train"] / args.batch_size)
    model, state = (resumed_model(args, summary, directory) if args.resume
                    else new_model(args, summary, directory, steps_per_epoch))
    check_flags(args, summary, model)
    pooled = not is_transformer(model)
    extractor, weights = backbone_for_export(args, summary, grid=not pooled)
    tf.io.gfile.makedirs(directory)
    fine_tuned = tf.io.gfile.exists(f"{directory}/scst/{SCST_STATE}")
    more_epochs = state["epoch"] < args.epochs and state["wait"] < args.patience

    if more_epochs and fine_tuned:
        raise UsageError(f"--output {args.output} was fine-tuned with --scst: more teacher-forced epochs would be "
                         "discarded by it; keep --epochs at the run's, or train into a new --output")
    if more_epochs:
        state.update(batch_size=args.batch_size, decay=args.decay)  # what the epochs run now are trained with
        train = caption_dataset(args.data, "train", summary, args.batch_size, shuffle=True, seed=args.seed,
                                pooled=pooled, features=features["train"])
        dev = caption_dataset(args.data, "dev", summary, args.batch_size, pooled=pooled,
                              features=features["dev"]).apply(
            tf.data.experimental.assert_cardinality(math.ceil(sizes["dev"] / args.batch_size)))
        callbacks = [keras.callbacks.TerminateOnNaN(), Checkpointer(directory, state, args.patience, args.decay),
                     keras.callbacks.TensorBoard(f"{out}/logs")]
        history = model.fit(train.repeat(), validation_data=dev, epochs=args.epochs, initial_epoch=state["epoch"],
                            steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                            shuffle=False)  # the dataset is shuffled
        if not all(math.isfinite(x) for x in history.history.get("loss", [])):
            raise UsageError(f"the training loss became NaN in epoch {state['epoch'] + 1}, so training stopped; "
                             f"continue from the last good epoch with --resume and a lower --learning-rate "
                             f"(now {learning_rate(model):g}), or check the features in --data for NaN/inf")
    else:
        log.info("nothing to train: epoch %d of --epochs %d, %d epochs without improvement (--patience %d)",
                     state["epoch"], args.epochs, state["wait"], args.patience)
    model.load_weights(f"{directory}/{BEST_FILE}")
    scst = None
    if args.scst or fine_tuned:  # a resumed run without --scst exports its self-critical weights, training none
        scst = train_scst(model, args.data, summary, features, f"{directory}/scst", args,
                          args.scst_epochs if args.scst else 0)

    card = export_captioner(f"{out}/export", model, extractor, vocabulary, {
        "backbone": {"name": summary["backbone"], "weights": weights, "image_size": summary["image_size"],
                     "flip_average": args.flip_average, "grid": not pooled,
                     "feature_size": summary["feature_size"]},
        "decoding": {"beam_width": args.beam_width, "alpha": DEFAULT_ALPHA if args.alpha is None else args.alpha,
                     "max_tokens": summary["max_length"] - 1, "without_repeats": True,
                     "specificity": args.specificity or 0.0},
        "training": {
            "data": args.data, "captions": summary["captions"], "images": summary["images"],
            "splits": summary["splits"], "min_word_count": summary["min_word_count"],
            "glove": {k: summary["glove"][k] for k in ("dim", "coverage")} if "glove" in summary else None,
            "train_embeddings": True if not pooled else model.get_layer("embedding").trainable,
            "seed": args.seed, "epochs": state["epoch"], "best_epoch": state["best_epoch"],
            "batch_size": state["batch_size"],
            "decay": state["decay"], "train_seconds": state["train_seconds"], "history": state["history"],
        },
        **({"self_critical": {k: scst.get(k) for k in ("samples", "images_per_step", "baseline", "learning_rate",
                                                       "epoch", "best_epoch", "history")}} if scst else {}),
        "metrics": {"dev": {"loss": state["best_val_loss"]} if not scst else {
            "teacher_forced_loss": state["best_val_loss"], "greedy_cider_d": round(scst["best_dev_cider_d"], 4)}},
    }, image_prior=image_prior(features["train"], pooled))
    log.info("exported to %s/export (best epoch %d, dev loss %.4f%s)", out, state["best_epoch"],
             state["best_val_loss"], f", self-critical epoch {scst['best_epoch']}" if scst else "")
    return card
