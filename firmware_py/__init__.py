"""Onboard runtime of the quick-preview image compressor (qpv)."""

__version__ = "0.1.0"
