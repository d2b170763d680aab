"""altvoice: image archives to alt-text captions and spoken descriptions, in batch, on Apache Beam.

From Python (see altvoice.api): `altvoice.load_model()`, `model.describe(paths_or_bytes)`,
`altvoice.speak(text)`. Imported on first use, so `import altvoice` stays light.
"""
__version__ = "0.1.0"
API = ("Description", "Model", "load_model", "speak")


def __getattr__(name: str):
    if name in API:
        import importlib

        return getattr(importlib.import_module("altvoice.api"), name)
    raise AttributeError(f"module 'altvoice' has no attribute {name!r}")
