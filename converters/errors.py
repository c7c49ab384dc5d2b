"""The one exception type for conversions that fail for an expected reason."""
from __future__ import annotations


class ConversionError(Exception):
    """A conversion could not be done; ``str()`` is one sentence meant for the user."""
