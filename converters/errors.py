"""The one exception type for conversions that fail for an expected reason."""
from __future__ import annotations

from common.errors import UserError


class ConversionError(UserError):
    """A conversion could not be done; ``str()`` is one sentence meant for the user."""


class OutputExists(ConversionError):
    """The output file is already there and replacing it was not asked for."""

    def __init__(self, path):
        super().__init__(f"{path} already exists.")
        self.path = path
