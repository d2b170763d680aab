"""Training objectives and schedules of the transformer decoder (saved with its checkpoints)."""
import keras
import tensorflow as tf

from altvoice.transforms.captions import PAD_ID


@keras.saving.register_keras_serializable("altvoice")
class SmoothedCrossEntropy(keras.losses.Loss):
    """Cross-entropy over real (non-padding) targets, with label smoothing: the target distribution is
    1 - smoothing on the target plus smoothing spread evenly over the whole vocabulary. One mean over all real target tokens, like the
    merge decoder's ignore_class loss; smoothing 0 is exactly that loss."""

    def __init__(self, smoothing: float = 0.1, name="smoothed_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smoothing = smoothing

    def call(self, targets, logits):
        targets = tf.cast(targets, tf.int32)
        log_probs = tf.nn.log_softmax(logits)
        nll = -tf.gather(log_probs, targets, batch_dims=2)
        loss = (1.0 - self.smoothing) * nll - self.smoothing * tf.reduce_mean(log_probs, axis=-1)
        mask = tf.cast(tf.not_equal(targets, PAD_ID), loss.dtype)
        return tf.reduce_sum(loss * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing}


@keras.saving.register_keras_serializable("altvoice")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`peak` * min(step / warmup, sqrt(warmup / step)): a linear warm-up over `warmup` steps, then
    inverse square-root decay (steps count from 1)."""

    def __init__(self, peak: float, warmup: int):
        self.peak, self.warmup = float(peak), max(1, int(warmup))

    def __call__(self, step):
        step = tf.cast(step, tf.float32) + 1.0
        return self.peak * tf.minimum(step / self.warmup, tf.sqrt(self.warmup / step))

    def get_config(self):
        return {"peak": self.peak, "warmup": self.warmup}
