"""Writing a file atomically: readers see the old file or the new one, never half of one.

The text goes to a temporary file next to the target, created with ``os.open`` in
exclusive mode and the final permissions from the start (``0o600`` for secrets: the
file is never readable by others, not even for a moment), is flushed to disk, then
renamed over the target. On any failure (a full disk included) the temporary file is
removed, so nothing is left behind.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Iterable, Union

Chunk = Union[bytes, bytearray, memoryview]


def atomic_write_bytes(path: Union[str, Path], data: Chunk, *, mode: int = 0o666) -> Path:
    """Replace ``path`` with ``data``; a new file gets ``mode`` (less the umask)."""
    return atomic_write_chunks(path, (data,), mode=mode)


def atomic_write_chunks(path: Union[str, Path], chunks: Iterable[Chunk], *, mode: int = 0o666) -> Path:
    """Replace ``path`` with the chunks one after the other (any buffer: large ones are
    written without being copied into one ``bytes`` first)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    except OSError as exc:
        exc.filename = str(path)   # the user knows the file, not our temporary name
        raise
    try:
        try:
            if mode & 0o077 == 0 and os.name == "posix":
                os.fchmod(fd, mode)       # a private file stays private whatever the umask
            for data in chunks:
                view = memoryview(data).cast("B")
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.filename in (None, str(tmp)):
            exc.filename = str(path)
        raise
    return path


def atomic_write_text(path: Union[str, Path], text: str, *, mode: int = 0o666,
                      encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding), mode=mode)
