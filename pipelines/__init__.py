"""Beam pipelines: preprocess (captions, vocabulary, features, TFRecords) and caption (archives to speech)."""
