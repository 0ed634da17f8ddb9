"""digitrec: handwritten digit recognition, from the paper's CNN on MNIST to a web app and OCR.

The package imports nothing heavy at start-up; see README.md for the CLI and API.
"""

__version__ = "0.1.0"
