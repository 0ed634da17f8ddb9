"""The exceptions digitrec raises for a user's mistake or bad input.

Each carries a message meant for a person; the CLI prints it without a traceback.
"""


class DigitrecError(Exception):
    """Base class: a problem the user can fix, described in the message."""


class DataError(DigitrecError):
    """A dataset file is missing, corrupt, truncated or fails its checksum."""


class ImageError(DigitrecError):
    """An input image cannot be decoded or is refused (too large, not an image)."""


class EmptyImageError(ImageError):
    """The image has no bytes or no pixels."""


class ImageTooLargeError(ImageError):
    """The image is over a limit on its bytes or pixels (a possible decompression bomb)."""
