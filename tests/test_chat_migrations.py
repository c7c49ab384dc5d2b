"""Forward migrations from a version-1 chat database written here by hand."""
from __future__ import annotations

import sqlite3
import uuid

import pytest

from chat import schema
from chat.records import ChatStoreError, COMPLETE
from chat.store import ChatStore

# The schema as version 1 shipped it (kept here verbatim, independent of chat.schema).
VERSION_1 = """
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY, title TEXT, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    role TEXT NOT NULL, content TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX messages_by_conversation ON messages(conversation_id);
CREATE INDEX messages_by_parent ON messages(parent_id);
PRAGMA user_version = 1;
"""


def make_version_1(path):
    conn = sqlite3.connect(path)
    conn.executescript(VERSION_1)
    conn.executemany("INSERT INTO conversations VALUES (?, ?, ?, ?)",
                     [(1, "Llamas", 100.0, 200.0), (2, None, 300.0, 300.0)])
    conn.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)", [
        (1, 1, None, "user", "Where do llamas come from?", 101.0),
        (2, 1, 1, "assistant", "From the Andes of South America.", 102.0),
        (3, 1, 1, "assistant", "Originally from North America, domesticated in Peru.", 150.0),
        (4, 1, 2, "user", "And alpacas?", 103.0),
        (5, 2, None, "user", "Zebra facts", 301.0),
    ])
    conn.commit()
    conn.close()


def test_version_1_database_is_migrated_and_keeps_everything(tmp_path):
    db = tmp_path / "chats.sqlite3"
    make_version_1(db)
    with ChatStore.open(db) as store:
        assert store._rows("PRAGMA user_version")[0][0] == schema.LATEST == 4
        assert store.integrity_check() == "ok"
        convs = {c.id: c for c in store.list()}
        assert convs[1].title == "Llamas" and len(store.messages(1)) == 4
        assert convs[1].message_count == 2       # the messages on the active path, below
        assert not convs[1].pinned and convs[1].system_prompt is None
        # no active path in version 1: the most recent leaf is chosen
        assert [m.id for m in store.active_path(1)] == [1, 3]
        assert [m.id for m in store.siblings(3)[0]] == [2, 3]
        assert [m.id for m in store.switch_to(2)] == [1, 2, 4]
        msg = store.get_message(2)
        assert (msg.state, msg.updated, msg.params, msg.stats) == (COMPLETE, 102.0, {}, {})
        # old messages are searchable
        assert [h.message_id for h in store.search("alpacas")] == [4]
        assert {h.conversation_id for h in store.search("llamas")} == {1}
        assert [h.message_id for h in store.search("zebra")] == [5]
        # and the new features work on old data
        store.set_pinned(2)
        q = store.add_user_message(2, "More zebra facts")
        assert store.get_message(q).parent_id == 5
        assert [c.id for c in store.list()] == [2, 1]


def test_version_3_conversations_get_distinct_stable_uuids(tmp_path):
    """Version 4 gives every conversation a uuid (exports carry it, so a second import
    of the same file is recognised); new ones get theirs when created."""
    db = tmp_path / "chats.sqlite3"
    make_version_1(db)
    conn = sqlite3.connect(db, isolation_level=None)
    for version, script in enumerate(schema.MIGRATIONS[1:3], start=1):   # up to version 3 only
        for statement in schema._statements(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version + 1}")
    conn.executemany("INSERT INTO conversations (title, created, updated) VALUES (?, ?, ?)",
                     [(f"more {i}", 400.0 + i, 400.0 + i) for i in range(50)])
    assert schema.user_version(conn) == 3
    conn.close()
    with ChatStore.open(db) as store:
        uuids = [c.uuid for c in store.list()]
        assert len(uuids) == 52 and len(set(uuids)) == 52
        for u in uuids:
            assert str(uuid.UUID(u)) == u and uuid.UUID(u).version == 4
        assert store.get(1).uuid == uuids[-1]                   # kept, not made up per read
        fresh = store.create()
        assert store.get(fresh).uuid not in uuids and uuid.UUID(store.get(fresh).uuid)
        with pytest.raises(sqlite3.IntegrityError):
            store._rows("UPDATE conversations SET uuid = ? WHERE id = 2", (uuids[-1],))
    with ChatStore.open(db) as store:
        assert [c.uuid for c in store.list()][1:] == uuids      # the same after reopening


def test_each_step_is_whole_and_the_version_only_moves_forward(tmp_path):
    db = tmp_path / "chats.sqlite3"
    conn = sqlite3.connect(db, isolation_level=None)
    assert schema.migrate(conn) == 0
    assert schema.user_version(conn) == schema.LATEST
    assert schema.migrate(conn) == schema.LATEST     # nothing left to do
    conn.close()


def test_a_failing_step_leaves_the_previous_version(tmp_path, monkeypatch):
    db = tmp_path / "chats.sqlite3"
    make_version_1(db)
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS + ("CREATE TABLE broken (;",))
    monkeypatch.setattr(schema, "LATEST", len(schema.MIGRATIONS))
    conn = sqlite3.connect(db, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        schema.migrate(conn)
    # every real step committed, the broken last one rolled back
    assert schema.user_version(conn) == len(schema.MIGRATIONS) - 1
    conn.close()


def test_a_database_from_a_newer_llamadesk_is_refused(tmp_path):
    db = tmp_path / "chats.sqlite3"
    ChatStore.open(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {schema.LATEST + 1}")
    conn.close()
    with pytest.raises(ChatStoreError, match="newer than this LlamaDesk"):
        ChatStore.open(db)
    ChatStore.open(db.parent / "other.sqlite3").close()    # the lock was released


def test_read_only_open_asks_for_an_upgrade_first(tmp_path):
    db = tmp_path / "chats.sqlite3"
    make_version_1(db)
    with pytest.raises(ChatStoreError, match="open it once for writing"):
        ChatStore.open(db, read_only=True)
    with pytest.raises(ChatStoreError, match="no chat database"):
        ChatStore.open(tmp_path / "missing.sqlite3", read_only=True)


def test_a_file_that_is_not_a_database_gets_a_clear_error(tmp_path):
    db = tmp_path / "chats.sqlite3"
    db.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(ChatStoreError, match="is not a readable chat database"):
        ChatStore.open(db)
    assert db.read_bytes().startswith(b"this is not sqlite")     # left as it was
