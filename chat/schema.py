"""The chat database's schema, as forward migrations keyed by PRAGMA user_version.

Migration N takes a database at version N to N + 1; a new database runs all of them,
so the path old databases take is the path every database takes. Never edit a
migration that has shipped: add a new one.

Version 1: conversations (title, times) and a tree of messages.
Version 2: per-conversation system prompt, model, pinned, archived, trash and active
           leaf; per-message model, sampling params, engine stats, token count, state.
Version 3: full-text search (FTS5, external content on messages.content).
Version 4: a stable uuid per conversation (exports carry it, so importing a file twice
           skips what is already here); an index on created for the same check.
"""
from __future__ import annotations

import sqlite3

from common.errors import UserError

V1 = """
CREATE TABLE conversations (
    id       INTEGER PRIMARY KEY,
    title    TEXT,
    created  REAL NOT NULL,
    updated  REAL NOT NULL
);
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    parent_id       INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    role            TEXT NOT NULL,
    content         TEXT NOT NULL,
    created         REAL NOT NULL
);
CREATE INDEX messages_by_conversation ON messages(conversation_id);
CREATE INDEX messages_by_parent ON messages(parent_id);
"""

V2 = """
ALTER TABLE conversations ADD COLUMN title_is_auto INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN system_prompt TEXT;
ALTER TABLE conversations ADD COLUMN model TEXT;
ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN deleted REAL;
ALTER TABLE conversations ADD COLUMN active_leaf INTEGER
    REFERENCES messages(id) ON DELETE SET NULL;
ALTER TABLE messages ADD COLUMN updated REAL;
ALTER TABLE messages ADD COLUMN model TEXT;
ALTER TABLE messages ADD COLUMN params TEXT;
ALTER TABLE messages ADD COLUMN stats TEXT;
ALTER TABLE messages ADD COLUMN token_count INTEGER;
ALTER TABLE messages ADD COLUMN state TEXT NOT NULL DEFAULT 'complete';
UPDATE messages SET updated = created;
-- Version 1 kept no active path: take the most recent leaf of each conversation.
UPDATE conversations SET active_leaf = (
    SELECT m.id FROM messages m
    WHERE m.conversation_id = conversations.id
      AND NOT EXISTS (SELECT 1 FROM messages c WHERE c.parent_id = m.id)
    ORDER BY m.created DESC, m.id DESC LIMIT 1);
CREATE INDEX conversations_listing ON conversations(deleted, pinned, updated);
-- Opening looks for replies a crash left streaming: keep that lookup off the table scan.
CREATE INDEX messages_streaming ON messages(state) WHERE state = 'streaming';
"""

V3 = """
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content, content='messages', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
"""

V4 = """
ALTER TABLE conversations ADD COLUMN uuid TEXT;
-- A random (version 4) UUID for every conversation already here.
UPDATE conversations SET uuid = lower(
    hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-'
    || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-'
    || hex(randomblob(6)));
CREATE UNIQUE INDEX conversations_by_uuid ON conversations(uuid);
CREATE INDEX conversations_by_created ON conversations(created);
"""

MIGRATIONS = (V1, V2, V3, V4)
LATEST = len(MIGRATIONS)


class SchemaTooNewError(UserError):
    pass


def user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database up to LATEST, one transaction per step. Returns the old version.

    ``conn`` must be in autocommit mode (isolation_level=None). A crash mid-step rolls
    that step back, so a database is always at some whole version.
    """
    start = user_version(conn)
    if start > LATEST:
        raise SchemaTooNewError(
            f"this chat database has schema version {start}, newer than this LlamaDesk "
            f"understands ({LATEST}); update LlamaDesk to open it")
    for version in range(start, LATEST):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return start


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit on its own)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        if not buf and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
