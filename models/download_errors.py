"""What can go wrong downloading a file; each ``str()`` is one sentence for the user."""
from __future__ import annotations

from common.errors import UserError


class DownloadError(UserError, RuntimeError):
    """A download failed; ``str()`` is meant for the user."""


class HashMismatchError(DownloadError):
    pass


class NotEnoughDiskSpace(DownloadError):
    pass


class DownloadBusy(DownloadError):
    pass


class UnverifiableFile(DownloadError):
    """The Hub gave no hash to check the file against, so it is not downloaded."""
