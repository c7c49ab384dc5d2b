"""ChatStore: the chat database (SQLite, WAL) and the conversation-level operations.

Threads: one ``ChatStore`` owns one sqlite3 connection, opened with
``check_same_thread=False``; every public method takes the store's lock, so a store
may be shared by the GUI thread and a generation worker and its calls are simply
serialized. Each write is one short transaction committed before the method returns.

Processes: one writable store per database at a time (see ``chat.lock``); another
``open()`` raises ``StoreLockedError``, while ``open(read_only=True)`` always works
and never blocks the writer (WAL: readers see the last commit).

Message-tree operations live in ``chat.messages`` (mixed in here); streaming replies
in ``chat.streaming``; export and import in ``chat.export`` and ``chat.importer``.
"""
from __future__ import annotations

import re
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Optional, Union
from urllib.parse import quote

from chat import schema
from chat.lock import WriterLock
from chat.messages import MessageOps
from chat.records import (ChatStoreError, Conversation, NotFoundError, SearchHit,
                        StoreReadOnlyError, INTERRUPTED, UNTITLED, clean_text, clean_time)

if TYPE_CHECKING:
    from chat.importer import ImportResult

ConvIds = Union[int, Iterable[int], None]

# message_count is the length of the active path (what `active_path` returns and the
# window shows), not every message of the tree: alternatives are not counted.
_CONV_COLUMNS = """c.id, c.uuid, c.title, c.title_is_auto, c.system_prompt, c.model, c.pinned,
    c.archived, c.created, c.updated, c.deleted, c.active_leaf,
    (WITH RECURSIVE path(id) AS (
        SELECT COALESCE(c.active_leaf, (
            SELECT m.id FROM messages m WHERE m.conversation_id = c.id
              AND NOT EXISTS (SELECT 1 FROM messages k WHERE k.parent_id = m.id)
            ORDER BY m.created DESC, m.id DESC LIMIT 1))
        UNION  -- not ALL: a parent loop another tool wrote ends instead of running forever
        SELECT m.parent_id FROM messages m JOIN path p ON m.id = p.id WHERE m.parent_id IS NOT NULL)
     SELECT count(*) FROM path WHERE id IS NOT NULL) AS message_count"""


@contextmanager
def _damage_is_a_store_error(path: Path) -> Iterator[None]:
    """A read that finds the file damaged (a database opened read-only despite its damage)
    raises a ChatStoreError that says so, not sqlite3's exception."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if type(exc) is not sqlite3.DatabaseError:   # locked, a constraint ...: not damage
            raise
        raise ChatStoreError(f"this part of the chat database {path.name} cannot be read: it is "
                             f"damaged ({exc})") from exc


class ChatStore(MessageOps):
    """Conversations and their message trees in one SQLite file. Use ``ChatStore.open``."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, read_only: bool,
                 lock: Optional[WriterLock], clock: Callable[[], float]):
        self._conn = conn
        self._lock = threading.RLock()
        self._writer_lock = lock
        self._now = clock
        self.path = path
        self.read_only = read_only
        self.recovered: list[int] = []   # replies found streaming at open, now interrupted

    # opening and closing ------------------------------------------------
    @classmethod
    def open(cls, path: Union[str, Path, None] = None, *, read_only: bool = False,
             clock: Callable[[], float] = time.time) -> "ChatStore":
        """Open (creating and migrating if needed) the chat database.

        ``path`` defaults to ``data_paths().chats_db``. Writable: takes the one-writer
        lock (``StoreLockedError`` if another process or store holds it), migrates,
        and marks replies left streaming by a crash as interrupted. Read-only: needs
        an existing, up-to-date database; never blocks or is blocked by the writer.
        """
        if path is None:
            from common.paths import data_paths

            path = data_paths().chats_db
        path = Path(path)
        if read_only:
            return cls._open_read_only(path, clock)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = WriterLock(path).acquire()
        try:
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                                   timeout=10.0)
            try:
                cls._configure(conn)
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise ChatStoreError(f"could not put {path} in WAL mode (got {mode})")
                # FULL: a commit is on disk when it returns, even across a power cut.
                conn.execute("PRAGMA synchronous=FULL")
                try:
                    schema.migrate(conn)
                except schema.SchemaTooNewError as exc:
                    raise ChatStoreError(str(exc)) from None
                store = cls(conn, path, read_only=False, lock=lock, clock=clock)
                store.recovered = store._recover_interrupted()
                return store
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise ChatStoreError(f"{path} is not a readable chat database ({exc})") from exc
            except BaseException:
                conn.close()
                raise
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _open_read_only(cls, path: Path, clock) -> "ChatStore":
        if not path.exists():
            raise ChatStoreError(f"there is no chat database at {path} yet")
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True,
                               isolation_level=None, check_same_thread=False, timeout=10.0)
        try:
            cls._configure(conn)
            version = schema.user_version(conn)
            if version != schema.LATEST:
                raise ChatStoreError(
                    f"the chat database {path} has schema version {version}, this LlamaDesk "
                    f"reads version {schema.LATEST}; open it once for writing to upgrade it")
        except BaseException:
            conn.close()
            raise
        return cls(conn, path, read_only=True, lock=None, clock=clock)

    @staticmethod
    def _configure(conn: sqlite3.Connection) -> None:
        conn.row_factory = sqlite3.Row
        # Text another tool stored as broken UTF-8 reads with U+FFFD instead of failing.
        conn.text_factory = _decode_text
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=10000")

    def _recover_interrupted(self) -> list[int]:
        with self._writing() as db:
            # The literal matches the partial index messages_streaming (a parameter would not).
            ids = [r[0] for r in db.execute("SELECT id FROM messages WHERE state = 'streaming'")]
            db.execute("UPDATE messages SET state = ? WHERE state = 'streaming'", (INTERRUPTED,))
        return ids

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._writer_lock is not None:
                self._writer_lock.release()
                self._writer_lock = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __enter__(self) -> "ChatStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # plumbing -----------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, serialized with every other call on this store."""
        if self.read_only:
            raise StoreReadOnlyError(
                "the chats are open read-only (another LlamaDesk window has them); "
                "changes are not possible here")
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several statements."""
        with self._lock, _damage_is_a_store_error(self.path):
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ChatStoreError("the chat store is closed")
        return self._conn

    def _rows(self, sql: str, args=()) -> list[sqlite3.Row]:
        with self._lock, _damage_is_a_store_error(self.path):
            return self._connection().execute(sql, args).fetchall()

    @staticmethod
    def _conversation(row: sqlite3.Row) -> Conversation:
        """A conversation from its row, whatever another tool or an older version stored."""
        deleted = row["deleted"]
        return Conversation(
            id=row["id"], title=clean_text(row["title"]) or None,
            title_is_auto=bool(row["title_is_auto"]),
            system_prompt=clean_text(row["system_prompt"]), model=clean_text(row["model"]),
            pinned=bool(row["pinned"]), archived=bool(row["archived"]),
            created=clean_time(row["created"]), updated=clean_time(row["updated"]),
            # in the trash whatever the stored time (NaN: unknown); None only when not there
            deleted=None if deleted is None else _or_nan(clean_time(deleted)),
            active_leaf_id=row["active_leaf"], message_count=row["message_count"],
            uuid=clean_text(row["uuid"]))

    def _require_conversation(self, db: sqlite3.Connection, conv_id: int) -> sqlite3.Row:
        row = db.execute("SELECT * FROM conversations WHERE id = ?", (conv_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no conversation with id {conv_id}")
        return row

    def _conversation_ids(self, which: ConvIds) -> list[int]:
        """None: every conversation not in the trash; an int or ids: those, checked."""
        if which is None:
            return [r[0] for r in self._rows(
                "SELECT id FROM conversations WHERE deleted IS NULL ORDER BY created, id")]
        ids = [which] if isinstance(which, int) else list(which)
        for conv_id in ids:
            self.get(conv_id)
        return ids

    # conversations ------------------------------------------------------
    def create(self, title: Optional[str] = None, system_prompt: Optional[str] = None,
               model: Optional[str] = None) -> int:
        """A new, empty conversation. Without a title, the first message names it."""
        now = self._now()
        with self._writing() as db:
            cur = db.execute(
                "INSERT INTO conversations (uuid, title, title_is_auto, system_prompt, model, "
                "created, updated) VALUES (?, ?, 0, ?, ?, ?, ?)",
                (new_uuid(), title, system_prompt, model, now, now))
            return cur.lastrowid

    def list(self, *, include_archived: bool = False, trash: bool = False) -> list[Conversation]:
        """Pinned first, then most recently updated. ``trash=True`` lists only the trash."""
        where = "c.deleted IS NOT NULL" if trash else "c.deleted IS NULL"
        if not trash and not include_archived:
            where += " AND c.archived = 0"
        order = "c.deleted DESC, c.id DESC" if trash else "c.pinned DESC, c.updated DESC, c.id DESC"
        rows = self._rows(f"SELECT {_CONV_COLUMNS} FROM conversations c WHERE {where} ORDER BY {order}")
        return [self._conversation(r) for r in rows]

    def get(self, conv_id: int) -> Conversation:
        rows = self._rows(f"SELECT {_CONV_COLUMNS} FROM conversations c WHERE c.id = ?", (conv_id,))
        if not rows:
            raise NotFoundError(f"no conversation with id {conv_id}")
        return self._conversation(rows[0])

    def _set(self, conv_id: int, **columns) -> None:
        sets = ", ".join(f"{name} = ?" for name in columns)
        with self._writing() as db:
            cur = db.execute(f"UPDATE conversations SET {sets} WHERE id = ?",
                             (*columns.values(), conv_id))
            if cur.rowcount == 0:
                raise NotFoundError(f"no conversation with id {conv_id}")

    def rename(self, conv_id: int, title: str) -> None:
        title = title.strip()
        self._set(conv_id, title=title or None, title_is_auto=0)

    def set_pinned(self, conv_id: int, pinned: bool = True) -> None:
        self._set(conv_id, pinned=int(bool(pinned)))

    def set_archived(self, conv_id: int, archived: bool = True) -> None:
        self._set(conv_id, archived=int(bool(archived)))

    def set_system_prompt(self, conv_id: int, system_prompt: Optional[str]) -> None:
        self._set(conv_id, system_prompt=system_prompt or None, updated=self._now())

    def set_model(self, conv_id: int, model: Optional[str]) -> None:
        self._set(conv_id, model=model)

    def delete(self, conv_id: int) -> None:
        """Move to the trash (restorable until the trash is emptied)."""
        self._set(conv_id, deleted=self._now())

    def restore(self, conv_id: int) -> bool:
        """Bring a conversation back from the trash; False when it was not in the trash."""
        with self._writing() as db:
            self._require_conversation(db, conv_id)
            return db.execute("UPDATE conversations SET deleted = NULL "
                              "WHERE id = ? AND deleted IS NOT NULL", (conv_id,)).rowcount == 1

    def purge(self, conv_id: int) -> None:
        """Delete for good, with all its messages."""
        with self._writing() as db:
            if db.execute("DELETE FROM conversations WHERE id = ?", (conv_id,)).rowcount == 0:
                raise NotFoundError(f"no conversation with id {conv_id}")

    def empty_trash(self) -> int:
        """Delete every conversation in the trash for good; returns how many."""
        with self._writing() as db:
            return db.execute("DELETE FROM conversations WHERE deleted IS NOT NULL").rowcount

    # search -------------------------------------------------------------
    def search(self, query: str, *, limit: int = 50,
               markers: tuple[str, str] = ("[", "]")) -> list[SearchHit]:
        """Messages containing every word of ``query`` (the last one as a prefix), best
        match first, in conversations not in the trash. Plain words: no query syntax."""
        match = fts_query(query)
        if not match:
            return []
        rows = self._rows(
            "SELECT m.id, m.conversation_id, m.role, m.created, c.title, "
            "snippet(messages_fts, 0, ?, ?, '…', 16) AS snippet "
            "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
            "JOIN conversations c ON c.id = m.conversation_id "
            "WHERE messages_fts MATCH ? AND c.deleted IS NULL "
            "ORDER BY rank LIMIT ?", (markers[0], markers[1], match, limit))
        paths: dict[int, list[int]] = {}
        hits = []
        for r in rows:
            conv_id = r["conversation_id"]
            if conv_id not in paths:
                paths[conv_id] = [m.id for m in self.active_path(conv_id)]
            path = paths[conv_id]
            hits.append(SearchHit(conversation_id=conv_id,
                                  conversation_title=clean_text(r["title"]) or UNTITLED,
                                  message_id=r["id"], role=clean_text(r["role"], ""),
                                  snippet=clean_text(r["snippet"], ""), created=clean_time(r["created"]),
                                  position=path.index(r["id"]) + 1 if r["id"] in path else None,
                                  path_length=len(path)))
        return hits

    # export and import --------------------------------------------------
    def export_json(self, conv_ids: ConvIds = None) -> str:
        """Lossless JSON of one conversation (an id), several, or all (None)."""
        from chat.export import to_json

        return to_json(self, self._conversation_ids(conv_ids))

    def export_markdown(self, conv_ids: ConvIds = None) -> str:
        """Readable Markdown of the active path of one, several or all conversations."""
        from chat.export import to_markdown

        return to_markdown(self, self._conversation_ids(conv_ids))

    def import_json(self, source: Union[str, Path]) -> "ImportResult":
        """Import an export (JSON text, or a path to one), all or nothing; conversations
        already here (same uuid, or same start and messages) are skipped. Returns an
        ``ImportResult`` (new ids, how many skipped). Raises ``ChatImportError`` saying
        where the file is wrong."""
        from chat.importer import import_json

        return import_json(self, source)

    # misc ---------------------------------------------------------------
    def integrity_check(self) -> str:
        return self._rows("PRAGMA integrity_check")[0][0]


def new_uuid() -> str:
    """A conversation's stable identity: it travels with exports, so an import can tell
    a conversation that is already here from a new one."""
    return str(uuid.uuid4())


def _or_nan(seconds: Optional[float]) -> float:
    return float("nan") if seconds is None else seconds


def _decode_text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def fts_query(text: str) -> str:
    """Free text -> an FTS5 query: every word quoted (so AND, NOT, '-', '"' are just
    words), all required, the last one matching as a prefix while the user types."""
    words = re.findall(r"\w+", text, flags=re.UNICODE)
    if not words:
        return ""
    quoted = ['"' + w.replace('"', '""') + '"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)

