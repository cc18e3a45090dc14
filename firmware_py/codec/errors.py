"""Exception types of the codec.

Every failure a caller can act on has its own type, all under ``QpvError`` so that
a flight or ground script can catch the codec's errors without catching bugs.
"""


class QpvError(Exception):
    """Base class of every error the codec raises on purpose."""


class CorruptStreamError(QpvError, ValueError):
    """The stream is truncated, damaged, hostile or not a qpv stream at all.

    Raised before any pixel is produced: a damaged stream never decodes into garbage.
    """


class ModelError(QpvError):
    """A model artifact is missing, unreadable, or does not match its manifest or the stream."""


class RateControlError(QpvError, ValueError):
    """No quantizer setting of the profile makes the stream fit the requested byte budget."""


class ImageError(QpvError, ValueError):
    """An input image is unreadable, empty, or has a shape or type the codec does not take."""
