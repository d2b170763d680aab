"""altvoice: image archives to alt-text captions and spoken descriptions, in batch, on Apache Beam."""
__version__ = "0.1.0"
