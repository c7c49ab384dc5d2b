"""Paths built from names we do not control stay inside their folder.

File names in a Hub listing, the commit a Hub answer names, a revision, and the shard
names in a checkpoint's ``model.safetensors.index.json`` all end up as parts of local
paths. Every such name goes through ``check_name`` (and is joined with ``safe_join``)
before anything is opened or written:

- a relative, ``/``-separated name of non-empty parts; no ``.`` or ``..`` part, no
  leading ``/``, no drive (``C:``) or other colon, no backslash, no NUL or other
  control character, no part longer than 255 bytes;
- joined under its root, the real path (symlinks resolved) must still be inside the
  root's real path, so an existing link cannot lead a write outside the folder.

``check_commit`` wants git's 40 hex digits. A refused name raises ``UnsafePathError``
whose message is one sentence naming it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Union

from common.errors import UserError

MAX_PART_BYTES = 255
MAX_NAME_BYTES = 4096
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_LINE_BREAKING_RE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def one_line(text: str, limit: int = 600) -> str:
    """Text from outside made safe to show in a one-sentence message: control and
    line-breaking characters escaped, and at most ``limit`` characters."""
    text = _LINE_BREAKING_RE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                                 else f"\\u{ord(m.group()):04x}", text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class UnsafePathError(UserError, ValueError):
    """A name from outside would leave its folder; ``str()`` is one sentence for the user."""


def _shown(name: str) -> str:
    text = ascii(name) if not isinstance(name, str) or _CONTROL_RE.search(name) else repr(name)
    return text if len(text) <= 120 else text[:117] + "..."


def _why_unsafe(name) -> str | None:
    if not isinstance(name, str):
        return "is not text"
    if not name:
        return "is empty"
    if "\x00" in name:
        return "contains a NUL byte"
    if _CONTROL_RE.search(name):
        return "contains a control character"
    if "\\" in name:
        return "contains a backslash"
    if ":" in name:
        return "contains a colon (a drive or stream name on Windows)"
    if name.startswith("/"):
        return "is an absolute path"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode"
    if len(encoded) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes"
    for part in name.split("/"):
        if part in ("", ".", ".."):
            return "has an empty, '.' or '..' part"
        if len(part.encode("utf-8")) > MAX_PART_BYTES:
            return f"has a part longer than {MAX_PART_BYTES} bytes"
    return None


def _where(where: str) -> str:
    return f" {where}" if where else ""


def check_name(name, what: str = "file name", where: str = "") -> str:
    """Return ``name`` when it is a safe relative name, else raise ``UnsafePathError``.

    The message reads "Refused the <what> '<name>' <where>: it ..."."""
    why = _why_unsafe(name)
    if why:
        raise UnsafePathError(f"Refused the {what} {_shown(name)}{_where(where)}: it {why}, so it could "
                              "point outside its folder.")
    return name


def check_commit(commit, what: str = "commit id", where: str = "") -> str:
    """Return ``commit`` when it is 40 lowercase hex digits, else raise ``UnsafePathError``."""
    if not isinstance(commit, str) or not _COMMIT_RE.fullmatch(commit):
        raise UnsafePathError(f"Refused the {what} {_shown(commit)}{_where(where)}: a commit id is 40 "
                              "hexadecimal digits.")
    return commit


def is_inside(root: Union[str, Path], path: Union[str, Path]) -> bool:
    """Whether ``path``, with every existing symlink resolved, is ``root`` or below it."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def ensure_inside(root: Union[str, Path], path: Union[str, Path], what: str = "file") -> Path:
    """Raise ``UnsafePathError`` when ``path`` resolves (through links) outside ``root``."""
    if not is_inside(root, path):
        raise UnsafePathError(f"Refused the {what} {Path(path).name!r}: a link leads it outside "
                              f"{root}.")
    return Path(path)


def safe_join(root: Union[str, Path], name: str, what: str = "file name", where: str = "") -> Path:
    """``root / name`` after ``check_name``, refused if links lead it outside ``root``."""
    check_name(name, what, where)
    path = Path(root).joinpath(*name.split("/"))
    if not is_inside(root, path):
        raise UnsafePathError(f"Refused the {what} {_shown(name)}{_where(where)}: a link leads it "
                              f"outside {root}.")
    return path
