"""Import a JSON export: check every value first, then write it in one transaction.

A file is refused whole, with a message naming the place that is wrong
(``chats.json: conversations[2].messages[5].created: Infinity is not a valid time``);
nothing is imported partially. Before anything is written, every value is checked:
times are finite, not before 1970 and within what this computer's calendar shows;
whole numbers fit SQLite's 64-bit integers; text is valid Unicode (no lone
surrogates); ``params`` and ``stats`` nest at most ``MAX_DEPTH`` deep; the file is at
most ``MAX_BYTES``.

Conversations come in with new ids. One that is already here is skipped: the same
``uuid`` (exports carry it), or, for a file written before conversations had one, the
same start time and the same messages. The result says how many were skipped.
"""
from __future__ import annotations

import json
import math
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from chat.export import FORMAT, FORMAT_VERSION
from chat.messages import dump_json
from chat.records import INTERRUPTED, MAX_TIME, ROLES, STATES, STREAMING, ChatImportError
from common.task import format_bytes, plural

MAX_BYTES = 512 * 1024 * 1024    # far above any real chat history; read into memory whole
MAX_DEPTH = 32                   # nesting inside a message's params and stats
INT_MIN, INT_MAX = -2 ** 63, 2 ** 63 - 1     # what SQLite stores as an INTEGER
_LONGEST_INT = len(str(INT_MIN))


@dataclass(frozen=True)
class ImportResult:
    imported: list[int] = field(default_factory=list)   # ids of the new conversations
    skipped: int = 0            # already here: same uuid, or same start and messages
    skipped_in_trash: int = 0   # of the skipped ones, how many are in the trash

    def summary(self, source: str = "") -> str:
        """'Imported 3 conversations from chats.json; skipped 5 already present.'"""
        text = f"Imported {plural(len(self.imported), 'conversation')}"
        text += f" from {source}" if source else ""
        if self.skipped:
            text += f"; skipped {self.skipped} already present"
            if self.skipped_in_trash:
                text += (" (in the trash)" if self.skipped_in_trash == self.skipped
                         else f" ({self.skipped_in_trash} of them in the trash)")
        return text + "."


class _Bad(Exception):
    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}")


class _HugeNumber:
    """A whole number too long to be one here, kept as its digits for the message."""

    def __init__(self, digits: str):
        self.digits = digits

    def __str__(self) -> str:
        return f"{self.digits[:12]}… ({len(self.digits.lstrip('-'))} digits)"


def _parse_int(digits: str):
    return int(digits) if len(digits) <= _LONGEST_INT else _HugeNumber(digits)


def import_json(store, source: Union[str, Path]) -> ImportResult:
    name, text = _read(source)
    try:
        doc = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise ChatImportError(f"{name}: not valid JSON at line {exc.lineno}, column "
                              f"{exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ChatImportError(f"{name}: nested too deeply to be a chat export") from None
    try:
        conversations = check_document(doc)
    except _Bad as exc:
        raise ChatImportError(f"{name}: {exc}") from None
    except RecursionError:      # a deep value where nothing is expected
        raise ChatImportError(f"{name}: nested too deeply to be a chat export") from None
    try:
        return _write(store, conversations)
    except sqlite3.DatabaseError as exc:
        raise ChatImportError(f"{name}: nothing was imported, the chat database refused it "
                              f"({exc})") from None


def _read(source: Union[str, Path]) -> tuple[str, str]:
    if isinstance(source, str) and source.lstrip()[:1] in ("{", "["):
        if len(source) > MAX_BYTES:
            raise ChatImportError(f"the imported text is larger than {format_bytes(MAX_BYTES)}")
        return "the imported text", source
    path = Path(source)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ChatImportError(f"{path.name}: {format_bytes(size)} is more than a chat export "
                                  f"can be ({format_bytes(MAX_BYTES)})")
        return path.name, path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ChatImportError(f"{path.name}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ChatImportError(f"cannot read {path}: {exc.strerror or exc}") from None


# --- checking ------------------------------------------------------------------------

def check_document(doc) -> list[dict]:
    if not isinstance(doc, dict):
        raise _Bad("top level", "expected an object with \"format\" and \"conversations\"")
    if doc.get("format") != FORMAT:
        raise _Bad("format", f"expected {FORMAT!r}, found {_show(doc.get('format'))} "
                             "(not a LlamaDesk chat export)")
    version = doc.get("version")
    if not _is_int(version) or not 1 <= version <= FORMAT_VERSION:
        raise _Bad("version", f"this LlamaDesk reads version {FORMAT_VERSION}, found {_show(version)}")
    convs = doc.get("conversations")
    if not isinstance(convs, list):
        raise _Bad("conversations", "expected a list")
    for i, conv in enumerate(convs):
        _check_conversation(conv, f"conversations[{i}]")
    return convs


def _check_conversation(conv, where: str) -> None:
    if not isinstance(conv, dict):
        raise _Bad(where, "expected an object")
    _check_uuid(conv, where)
    for key in ("title", "system_prompt", "model"):
        _expect_text(conv, key, where, optional=True)
    for key in ("title_is_auto", "pinned", "archived"):
        if not isinstance(conv.get(key, False), bool):
            raise _Bad(f"{where}.{key}", f"expected true or false, found {_show(conv[key])}")
    for key in ("created", "updated"):
        _expect_time(conv, key, where)
    messages = conv.get("messages")
    if not isinstance(messages, list):
        raise _Bad(f"{where}.messages", "expected a list")
    seen: set[int] = set()
    for j, msg in enumerate(messages):
        _check_message(msg, f"{where}.messages[{j}]", seen)
        seen.add(msg["id"])
    leaf = conv.get("active_leaf")
    if leaf is not None and (not _is_int(leaf) or leaf not in seen):
        raise _Bad(f"{where}.active_leaf", f"{_show(leaf)} is not the id of a message in this "
                                           "conversation")


def _check_uuid(conv: dict, where: str) -> None:
    value = conv.get("uuid")
    if value is None:
        return
    try:
        if not isinstance(value, str):
            raise ValueError
        conv["uuid"] = str(uuid.UUID(value))
    except ValueError:
        raise _Bad(f"{where}.uuid", f"expected a UUID or null, found {_show(value)}") from None


def _check_message(msg, where: str, earlier: set[int]) -> None:
    if not isinstance(msg, dict):
        raise _Bad(where, "expected an object")
    _expect_int(msg, "id", where)
    if msg["id"] in earlier:
        raise _Bad(f"{where}.id", f"{msg['id']} is used twice in this conversation")
    parent = msg.get("parent")
    if parent is not None and (not _is_int(parent) or parent not in earlier):
        raise _Bad(f"{where}.parent", f"{_show(parent)} is not the id of an earlier message in "
                                      "this conversation")
    if msg.get("role") not in ROLES:
        raise _Bad(f"{where}.role", f"expected one of {', '.join(ROLES)}, found {_show(msg.get('role'))}")
    _expect_text(msg, "content", where)
    _expect_time(msg, "created", where)
    if msg.get("updated") is not None:
        _expect_time(msg, "updated", where)
    _expect_text(msg, "model", where, optional=True)
    for key in ("params", "stats"):
        value = msg.get(key)
        if value is not None and not isinstance(value, dict):
            raise _Bad(f"{where}.{key}", f"expected an object, found {_show(value)}")
        _check_value(value, f"{where}.{key}", 1)
    if msg.get("token_count") is not None:
        _expect_int(msg, "token_count", where, low=0)
    if msg.get("state", "complete") not in STATES:
        raise _Bad(f"{where}.state", f"expected one of {', '.join(STATES)}, found {_show(msg.get('state'))}")


def _expect_text(obj: dict, key: str, where: str, optional: bool = False) -> None:
    value = obj.get(key)
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise _Bad(f"{where}.{key}", f"expected text{' or null' if optional else ''}, found {_show(value)}")
    _check_text(value, f"{where}.{key}")


def _check_text(value: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Bad(where, f"not valid Unicode: a lone surrogate (\\u{ord(value[exc.start]):04x}) at "
                          f"character {exc.start}") from None


def _expect_time(obj: dict, key: str, where: str) -> None:
    value = obj.get(key)
    where = f"{where}.{key}"
    if isinstance(value, _HugeNumber):
        raise _Bad(where, f"{value} is not a valid time")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(where, f"expected a time in seconds since 1970, found {_show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Bad(where, f"{_show(value)} is not a valid time")
    if value < 0:
        raise _Bad(where, f"{_show(value)} is not a valid time (before 1970)")
    if value > MAX_TIME:
        raise _Bad(where, f"{_show(value)} is not a valid time (after the year 9999)")
    try:
        time.localtime(value)
    except (OverflowError, OSError, ValueError):
        raise _Bad(where, f"{_show(value)} is not a valid time on this computer") from None


def _expect_int(obj: dict, key: str, where: str, low: int = INT_MIN) -> None:
    value = obj.get(key)
    where = f"{where}.{key}"
    if isinstance(value, _HugeNumber) or (_is_int(value) and not INT_MIN <= value <= INT_MAX):
        raise _Bad(where, f"{_show(value)} is too large to store (whole numbers are 64-bit)")
    if not _is_int(value):
        raise _Bad(where, f"expected a whole number, found {_show(value)}")
    if value < low:
        raise _Bad(where, f"expected {low} or more, found {value}")


def _check_value(value, where: str, depth: int) -> None:
    """Any JSON value inside params or stats: storable numbers, valid text, bounded depth."""
    if isinstance(value, (dict, list)) and depth > MAX_DEPTH:
        raise _Bad(where, f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, _member(where, key))
            _check_value(item, _member(where, key), depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_value(item, f"{where}[{i}]", depth + 1)
    elif isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, _HugeNumber) or (_is_int(value) and not INT_MIN <= value <= INT_MAX):
        raise _Bad(where, f"{_show(value)} is too large to store (whole numbers are 64-bit)")
    elif isinstance(value, float) and not math.isfinite(value):
        raise _Bad(where, f"{_show(value)} is not a valid number")


def _member(where: str, key: str) -> str:
    return f"{where}.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f"{where}[{_show(key)}]"


def _show(value) -> str:
    """A value as the message quotes it: JSON, short, ASCII (so a bad character can be named)."""
    if isinstance(value, _HugeNumber):
        return str(value)
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- writing ---------------------------------------------------------------------------

def _write(store, conversations: list[dict]) -> ImportResult:
    from chat.store import new_uuid

    new_ids: list[int] = []
    skipped = in_trash = 0
    with store._writing() as db:
        for conv in conversations:
            present = _already_here(db, conv)
            if present is not None:
                skipped += 1
                in_trash += present["deleted"] is not None
                continue
            cur = db.execute(
                "INSERT INTO conversations (uuid, title, title_is_auto, system_prompt, model, "
                "pinned, archived, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (conv.get("uuid") or new_uuid(), conv.get("title") or None,
                 int(conv.get("title_is_auto", False)), conv.get("system_prompt"), conv.get("model"),
                 int(conv.get("pinned", False)), int(conv.get("archived", False)),
                 conv["created"], conv["updated"]))
            conv_id = cur.lastrowid
            ids: dict[int, int] = {}
            for msg in conv["messages"]:
                state = msg.get("state", "complete")
                cur = db.execute(
                    "INSERT INTO messages (conversation_id, parent_id, role, content, created, "
                    "updated, model, params, stats, token_count, state) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (conv_id, ids.get(msg.get("parent")), msg["role"], msg["content"],
                     msg["created"], msg.get("updated", msg["created"]), msg.get("model"),
                     dump_json(msg.get("params")), dump_json(msg.get("stats")),
                     msg.get("token_count"), INTERRUPTED if state == STREAMING else state))
                ids[msg["id"]] = cur.lastrowid
            leaf = conv.get("active_leaf")
            db.execute("UPDATE conversations SET active_leaf = ? WHERE id = ?",
                       (ids.get(leaf) if leaf is not None else None, conv_id))
            new_ids.append(conv_id)
    return ImportResult(new_ids, skipped, in_trash)


def _already_here(db: sqlite3.Connection, conv: dict) -> Optional[sqlite3.Row]:
    """The conversation already in the store that this record is, if any: the same uuid,
    or (files written before uuids, or a copy imported from one) the same start time
    and the same messages."""
    if conv.get("uuid"):
        row = db.execute("SELECT id, deleted FROM conversations WHERE uuid = ?",
                         (conv["uuid"],)).fetchone()
        if row is not None:
            return row
    want = [(m["role"], m["content"], float(m["created"])) for m in conv["messages"]]
    for row in db.execute("SELECT id, deleted FROM conversations WHERE created = ?",
                          (float(conv["created"]),)).fetchall():
        got = db.execute("SELECT role, content, created FROM messages WHERE conversation_id = ? "
                         "ORDER BY id", (row["id"],)).fetchall()
        if [tuple(r) for r in got] == want:
            return row
    return None
