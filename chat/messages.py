"""The message tree of a conversation: add, branch, regenerate, switch, walk.

A conversation is a tree: each message has a parent (none for the first turn), and
siblings are alternatives: editing a user message adds a sibling user message,
regenerating a reply adds a sibling reply. The conversation stores its *active
leaf*; the active path is the chain from the root down to it. Mixed into
``chat.store.ChatStore``; every write commits before returning.
"""
from __future__ import annotations

import json
import sqlite3
import time
from typing import Callable, Optional

from chat.records import (ASSISTANT, CANCELLED, COMPLETE, ERROR, FINAL_STATES, INTERRUPTED,
                        STREAMING, USER, ChatStoreError, Message, NotFoundError, auto_title,
                        clean_text, clean_time)

_MSG_COLUMNS = ("id, conversation_id, parent_id, role, content, created, updated, model, "
                "params, stats, token_count, state")


def message_from_row(row: sqlite3.Row) -> Message:
    """A message from its row, whatever another tool or an older version stored in it."""
    created = clean_time(row["created"])
    updated = clean_time(row["updated"])
    count = row["token_count"]
    return Message(
        id=row["id"], conversation_id=row["conversation_id"], parent_id=row["parent_id"],
        role=clean_text(row["role"], ""), content=clean_text(row["content"], ""), created=created,
        updated=updated if updated is not None else created,
        model=clean_text(row["model"]), params=_json_object(row["params"]),
        stats=_json_object(row["stats"]),
        token_count=count if isinstance(count, int) and count >= 0 else None,
        state=clean_text(row["state"], COMPLETE))


def _json_object(text) -> dict:
    """A stored JSON object; {} for anything else (absent, damaged, not an object)."""
    if not text:
        return {}
    text = clean_text(text)
    try:
        # NaN and Infinity (which strict JSON has not) read as null
        value = json.loads(text, parse_constant=lambda _name: None)
        if "\\ud" in text.lower():      # an escaped lone surrogate would break every export
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):   # UnicodeEncodeError is a ValueError
        return {}
    return value if isinstance(value, dict) else {}


def dump_json(value) -> Optional[str]:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else None


class MessageOps:
    """Message-tree methods of ChatStore (uses its ``_writing``, ``_rows``, ``_now``)."""

    # reading ------------------------------------------------------------
    def get_message(self, message_id: int) -> Message:
        rows = self._rows(f"SELECT {_MSG_COLUMNS} FROM messages WHERE id = ?", (message_id,))
        if not rows:
            raise NotFoundError(f"no message with id {message_id}")
        return message_from_row(rows[0])

    def messages(self, conv_id: int) -> list[Message]:
        """Every message of the conversation's tree, parents before children."""
        self.get(conv_id)
        rows = self._rows(f"SELECT {_MSG_COLUMNS} FROM messages WHERE conversation_id = ? "
                          "ORDER BY id", (conv_id,))
        return [message_from_row(r) for r in rows]

    def active_path(self, conv_id: int) -> list[Message]:
        """The messages shown: root .. active leaf."""
        with self._reading() as db:
            conv = self._require_conversation(db, conv_id)
            leaf = conv["active_leaf"]
            if leaf is None:
                leaf = _latest_leaf_below(db, conv_id, None)
                if leaf is None:
                    return []
            rows = db.execute(
                # A path is never longer than the conversation: a parent loop written by
                # another tool ends there instead of running forever.
                "WITH RECURSIVE path(id, depth) AS ("
                "  SELECT ?, 0 UNION ALL"
                "  SELECT m.parent_id, p.depth + 1 FROM messages m JOIN path p ON m.id = p.id"
                "  WHERE m.parent_id IS NOT NULL AND p.depth < "
                "    (SELECT count(*) FROM messages WHERE conversation_id = ?)) "
                f"SELECT {', '.join('m.' + c.strip() for c in _MSG_COLUMNS.split(','))} "
                "FROM path JOIN messages m ON m.id = path.id ORDER BY path.depth DESC",
                (leaf, conv_id)).fetchall()
        return [message_from_row(r) for r in rows]

    def siblings(self, message_id: int) -> tuple[list[Message], int]:
        """The alternatives at this message's place (itself included, oldest first) and
        its index among them: what a ``< 2/3 >`` control shows."""
        msg = self.get_message(message_id)
        if msg.parent_id is None:
            rows = self._rows(f"SELECT {_MSG_COLUMNS} FROM messages WHERE conversation_id = ? "
                              "AND parent_id IS NULL ORDER BY created, id", (msg.conversation_id,))
        else:
            rows = self._rows(f"SELECT {_MSG_COLUMNS} FROM messages WHERE parent_id = ? "
                              "ORDER BY created, id", (msg.parent_id,))
        found = [message_from_row(r) for r in rows]
        if all(m.id != message_id for m in found):   # a damaged index left it out: it is still there
            found = sorted(found + [msg], key=lambda m: (m.created, m.id))
        return found, [m.id for m in found].index(message_id)

    def children(self, message_id: int) -> list[Message]:
        rows = self._rows(f"SELECT {_MSG_COLUMNS} FROM messages WHERE parent_id = ? "
                          "ORDER BY created, id", (message_id,))
        return [message_from_row(r) for r in rows]

    # writing ------------------------------------------------------------
    def add_user_message(self, conv_id: int, content: str,
                         parent_id: Optional[int] = None) -> int:
        """Commit the user's message (before generation starts) and make it the active
        leaf. ``parent_id=None`` appends to the active path."""
        with self._writing() as db:
            conv = self._require_conversation(db, conv_id)
            parent_id = _parent_or_active_leaf(db, conv, parent_id)
            new_id = self._insert(db, conv_id, parent_id, USER, content, COMPLETE)
            if conv["title"] is None:
                db.execute("UPDATE conversations SET title = ?, title_is_auto = 1 WHERE id = ?",
                           (auto_title(content), conv_id))
            return new_id

    def begin_reply(self, conv_id: int, parent_id: Optional[int] = None,
                    model: Optional[str] = None, params: Optional[dict] = None) -> int:
        """An empty assistant message in state streaming, now the active leaf. Fill it
        through ``reply_writer``. ``parent_id=None`` answers the active leaf."""
        with self._writing() as db:
            conv = self._require_conversation(db, conv_id)
            parent_id = _parent_or_active_leaf(db, conv, parent_id)
            return self._insert(db, conv_id, parent_id, ASSISTANT, "", STREAMING,
                                model=model or conv["model"], params=params)

    def reply_writer(self, message_id: int, *, clock: Callable[[], float] = time.monotonic,
                     save_interval: float = 1.0):
        """A ``ReplyWriter`` that streams text into a reply begun with ``begin_reply``."""
        from chat.streaming import ReplyWriter

        msg = self.get_message(message_id)
        if msg.state != STREAMING:
            raise ChatStoreError(f"message {message_id} is not streaming (it is {msg.state})")
        return ReplyWriter(self, message_id, msg.content, clock=clock, save_interval=save_interval)

    def start_reply(self, conv_id: int, parent_id: Optional[int] = None,
                    model: Optional[str] = None, params: Optional[dict] = None, **writer_options):
        """``begin_reply`` + ``reply_writer`` in one call."""
        return self.reply_writer(self.begin_reply(conv_id, parent_id, model, params),
                                 **writer_options)

    def continue_reply(self, message_id: int, **writer_options):
        """Resume an interrupted (or cancelled, or failed, or cut by a length limit) reply:
        it becomes streaming again, the active leaf, and the writer starts from its saved
        text."""
        msg = self.get_message(message_id)
        cut_short = msg.state == COMPLETE and msg.stats.get("stop_reason") == "length"
        if msg.role != ASSISTANT or not (cut_short or msg.state in (INTERRUPTED, CANCELLED, ERROR)):
            raise ChatStoreError(f"message {message_id} is not an unfinished reply")
        with self._writing() as db:
            if db.execute("SELECT 1 FROM messages WHERE parent_id = ?", (message_id,)).fetchone():
                raise ChatStoreError("only the last message of a branch can be continued")
            db.execute("UPDATE messages SET state = ?, updated = ? WHERE id = ?",
                       (STREAMING, self._now(), message_id))
            db.execute("UPDATE conversations SET active_leaf = ? WHERE id = ?",
                       (message_id, msg.conversation_id))
        return self.reply_writer(message_id, **writer_options)

    def edit_user_message(self, message_id: int, new_content: str) -> int:
        """A new user message beside the old one (a branch); it becomes the active leaf."""
        msg = self.get_message(message_id)
        if msg.role != USER:
            raise ChatStoreError(f"message {message_id} is not a user message")
        with self._writing() as db:
            return self._insert(db, msg.conversation_id, msg.parent_id, USER, new_content,
                                COMPLETE)

    def regenerate(self, reply_id: int, model: Optional[str] = None,
                   params: Optional[dict] = None) -> int:
        """A new, streaming reply beside ``reply_id`` (same parent, same model and
        settings unless given); it becomes the active leaf."""
        msg = self.get_message(reply_id)
        if msg.role != ASSISTANT:
            raise ChatStoreError(f"message {reply_id} is not a reply")
        with self._writing() as db:
            return self._insert(db, msg.conversation_id, msg.parent_id, ASSISTANT, "", STREAMING,
                                model=model or msg.model,
                                params=msg.params if params is None else params)

    def switch_to(self, message_id: int) -> list[Message]:
        """Make the active path run through ``message_id``, down to the most recent leaf
        below it. Returns the new active path."""
        msg = self.get_message(message_id)
        with self._writing() as db:
            leaf = _latest_leaf_below(db, msg.conversation_id, message_id)
            db.execute("UPDATE conversations SET active_leaf = ? WHERE id = ?",
                       (leaf, msg.conversation_id))
        return self.active_path(msg.conversation_id)

    # used by ReplyWriter --------------------------------------------------
    def _save_reply(self, message_id: int, content: str) -> None:
        with self._writing() as db:
            db.execute("UPDATE messages SET content = ?, updated = ? WHERE id = ?",
                       (content, self._now(), message_id))

    def _finish_reply(self, message_id: int, content: str, state: str,
                      stats: Optional[dict], token_count: Optional[int]) -> None:
        if state not in FINAL_STATES:
            raise ValueError(f"a reply finishes as one of {FINAL_STATES}, not {state!r}")
        now = self._now()
        with self._writing() as db:
            db.execute("UPDATE messages SET content = ?, updated = ?, state = ?, stats = ?, "
                       "token_count = ? WHERE id = ?",
                       (content, now, state, dump_json(stats), token_count, message_id))
            db.execute("UPDATE conversations SET updated = ? WHERE id = "
                       "(SELECT conversation_id FROM messages WHERE id = ?)", (now, message_id))

    def _insert(self, db: sqlite3.Connection, conv_id: int, parent_id: Optional[int], role: str,
                content: str, state: str, *, model: Optional[str] = None,
                params: Optional[dict] = None) -> int:
        now = self._now()
        cur = db.execute(
            "INSERT INTO messages (conversation_id, parent_id, role, content, created, updated, "
            "model, params, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (conv_id, parent_id, role, content, now, now, model, dump_json(params), state))
        db.execute("UPDATE conversations SET active_leaf = ?, updated = ? WHERE id = ?",
                   (cur.lastrowid, now, conv_id))
        return cur.lastrowid


def _parent_or_active_leaf(db: sqlite3.Connection, conv, parent_id: Optional[int]) -> Optional[int]:
    """The given parent (checked to belong to the conversation), or its active leaf."""
    if parent_id is None:
        return conv["active_leaf"]
    _require_in(db, parent_id, conv["id"])
    return parent_id


def _require_in(db: sqlite3.Connection, message_id: int, conv_id: int) -> None:
    row = db.execute("SELECT conversation_id FROM messages WHERE id = ?", (message_id,)).fetchone()
    if row is None or row[0] != conv_id:
        raise NotFoundError(f"no message {message_id} in conversation {conv_id}")


def _latest_leaf_below(db: sqlite3.Connection, conv_id: int,
                       message_id: Optional[int]) -> Optional[int]:
    """The most recently created leaf in the subtree of ``message_id`` (None: the whole
    conversation)."""
    if message_id is None:
        start = "SELECT id FROM messages WHERE conversation_id = ? AND parent_id IS NULL"
        arg = conv_id
    else:
        start = "SELECT ?"
        arg = message_id
    row = db.execute(
        f"WITH RECURSIVE sub(id) AS ({start} UNION "     # UNION: a parent loop ends
        "  SELECT m.id FROM messages m JOIN sub ON m.parent_id = sub.id) "
        "SELECT m.id FROM sub JOIN messages m ON m.id = sub.id "
        "WHERE NOT EXISTS (SELECT 1 FROM messages c WHERE c.parent_id = m.id) "
        "ORDER BY m.created DESC, m.id DESC LIMIT 1", (arg,)).fetchone()
    return row[0] if row else None
