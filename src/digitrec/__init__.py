"""digitrec: handwritten digit recognition, from the paper's CNN on MNIST to a web app and OCR.

The package imports nothing heavy at start-up; see README.md for the CLI and API.
"""

__version__ = "0.1.0"


def __getattr__(name):  # `from digitrec import Recognizer` without importing onnxruntime up front
    if name == "Recognizer":
        from .recognizer import Recognizer

        return Recognizer
    raise AttributeError(f"module 'digitrec' has no attribute {name!r}")
