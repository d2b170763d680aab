"""TF ops that tf.transform exports: one definition of caption cleaning for training and inference."""
