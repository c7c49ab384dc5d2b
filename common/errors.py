"""Errors meant for the user, and what front ends do with everything else.

Raise ``UserError`` (or a subclass: the engine's, the chat store's, the converter's,
the Hub's and the downloader's errors all are) with one sentence that says what went
wrong and, where there is one, what to do. Front ends show ``str(error)`` as it is.

Anything else that escapes to a front end is a bug: ``user_message`` gives ``None``
for it, ``log_traceback`` writes the full traceback to the logs folder, and the user
sees one sentence that says where it is.
"""
from __future__ import annotations

import errno
import time
import traceback
from pathlib import Path
from typing import Optional

LOG_NAME = "errors.log"
_MAX_LOG_BYTES = 1024 * 1024


class UserError(Exception):
    """A problem the user can understand and act on; ``str()`` is the sentence to show."""


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1))


def user_message(exc: BaseException) -> Optional[str]:
    """The one sentence to show for a known kind of error; ``None`` for a bug."""
    if isinstance(exc, UserError):
        return str(exc) or type(exc).__name__
    if is_disk_full(exc):
        where = f" writing {exc.filename}" if getattr(exc, "filename", None) else ""
        return f"disk full{where}: free some space and try again."
    if isinstance(exc, MemoryError):
        return "out of memory: close other programs, or choose a smaller model or context."
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        # a file the user named or owns: missing, not allowed, a folder, read-only ...
        return f"{exc.strerror}: {exc.filename}"
    return None


def log_traceback(exc: BaseException, context: str = "") -> Optional[Path]:
    """Append ``exc``'s traceback to the logs folder's error log; its path, or None if it cannot."""
    from common.paths import data_paths
    from common.version import __version__

    try:
        logs = data_paths().logs
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / LOG_NAME
        if path.exists() and path.stat().st_size > _MAX_LOG_BYTES:
            path.replace(path.with_name(LOG_NAME + ".1"))
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"--- {stamp} LlamaDesk {__version__} {context}\n{text}\n")
        return path
    except OSError:
        return None


def unexpected_message(exc: BaseException, log: Optional[Path]) -> str:
    """The sentence for a bug: what it was, and where the full report went."""
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if len(what) > 200:
        what = what[:200] + "…"
    where = (f"the full report is in {log}" if log else
             "no report could be written to the logs folder; run with --debug to see it")
    return f"something went wrong inside LlamaDesk ({what}); {where}."
