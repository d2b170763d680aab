"""The captioning model: CNN backbones, the merge decoder, decoding and export."""
