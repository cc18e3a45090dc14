"""Offline training and export of the codec's models (never installed onboard)."""
