"""Import a JSON export: check all of it first, then write it in one transaction.

A file is refused whole, with a message naming the place that is wrong
(``chats.json: conversations[2].messages[5].parent: ...``); nothing is imported
partially. Conversations come in as new ones, with new ids.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Union

from chat.export import FORMAT, FORMAT_VERSION
from chat.messages import dump_json
from chat.model import INTERRUPTED, ROLES, STATES, STREAMING, ChatImportError


class _Bad(Exception):
    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}")


def import_json(store, source: Union[str, Path]) -> list[int]:
    name, text = _read(source)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ChatImportError(f"{name}: not valid JSON at line {exc.lineno}, column "
                              f"{exc.colno}: {exc.msg}") from None
    try:
        conversations = check_document(doc)
    except _Bad as exc:
        raise ChatImportError(f"{name}: {exc}") from None
    return _write(store, conversations)


def _read(source: Union[str, Path]) -> tuple[str, str]:
    if isinstance(source, str) and source.lstrip()[:1] in ("{", "["):
        return "the imported text", source
    path = Path(source)
    try:
        return path.name, path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ChatImportError(f"{path.name}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ChatImportError(f"cannot read {path}: {exc.strerror or exc}") from None


def check_document(doc) -> list[dict]:
    if not isinstance(doc, dict):
        raise _Bad("top level", "expected an object with \"format\" and \"conversations\"")
    if doc.get("format") != FORMAT:
        raise _Bad("format", f"expected {FORMAT!r}, found {doc.get('format')!r} "
                             "(not a LlamaDesk chat export)")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
        raise _Bad("version", f"this LlamaDesk reads version {FORMAT_VERSION}, found {version!r}")
    convs = doc.get("conversations")
    if not isinstance(convs, list):
        raise _Bad("conversations", "expected a list")
    for i, conv in enumerate(convs):
        _check_conversation(conv, f"conversations[{i}]")
    return convs


def _check_conversation(conv, where: str) -> None:
    if not isinstance(conv, dict):
        raise _Bad(where, "expected an object")
    for key in ("title", "system_prompt", "model"):
        _expect(conv, key, (str, type(None)), where, "text or null")
    for key in ("title_is_auto", "pinned", "archived"):
        _expect(conv, key, bool, where, "true or false", default=False)
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
        raise _Bad(f"{where}.active_leaf", f"{leaf!r} is not the id of a message in this "
                                           "conversation")


def _check_message(msg, where: str, earlier: set[int]) -> None:
    if not isinstance(msg, dict):
        raise _Bad(where, "expected an object")
    if not _is_int(msg.get("id")):
        raise _Bad(f"{where}.id", f"expected a whole number, found {msg.get('id')!r}")
    if msg["id"] in earlier:
        raise _Bad(f"{where}.id", f"{msg['id']} is used twice in this conversation")
    parent = msg.get("parent")
    if parent is not None and (not _is_int(parent) or parent not in earlier):
        raise _Bad(f"{where}.parent", f"{parent!r} is not the id of an earlier message in "
                                      "this conversation")
    if msg.get("role") not in ROLES:
        raise _Bad(f"{where}.role", f"expected one of {', '.join(ROLES)}, found {msg.get('role')!r}")
    _expect(msg, "content", str, where, "text")
    _expect_time(msg, "created", where)
    if msg.get("updated") is not None:
        _expect_time(msg, "updated", where)
    _expect(msg, "model", (str, type(None)), where, "text or null")
    for key in ("params", "stats"):
        _expect(msg, key, (dict, type(None)), where, "an object")
    if msg.get("token_count") is not None and not _is_int(msg["token_count"]):
        raise _Bad(f"{where}.token_count", f"expected a whole number, found {msg['token_count']!r}")
    if msg.get("state", "complete") not in STATES:
        raise _Bad(f"{where}.state", f"expected one of {', '.join(STATES)}, found {msg.get('state')!r}")


def _expect(obj: dict, key: str, types, where: str, what: str, default=None) -> None:
    value = obj.get(key, default)
    if not isinstance(value, types):
        raise _Bad(f"{where}.{key}", f"expected {what}, found {json.dumps(value)[:40]}")


def _expect_time(obj: dict, key: str, where: str) -> None:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise _Bad(f"{where}.{key}", f"expected a time in seconds since 1970, found "
                                     f"{json.dumps(value)[:40]}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _write(store, conversations: list[dict]) -> list[int]:
    new_ids = []
    with store._writing() as db:
        for conv in conversations:
            cur = db.execute(
                "INSERT INTO conversations (title, title_is_auto, system_prompt, model, pinned, "
                "archived, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (conv.get("title"), int(conv.get("title_is_auto", False)), conv.get("system_prompt"),
                 conv.get("model"), int(conv.get("pinned", False)), int(conv.get("archived", False)),
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
    return new_ids
