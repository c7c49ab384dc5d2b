"""`llamadesk chats`: list, search, show, export and import conversations.

Reading works while the app is open (the store is then opened read-only); importing
needs the app closed, and says so.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, help="chat database (default: the data folder's)")
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    p = sub.add_parser("list", help="list conversations (the default)")
    p.add_argument("--archived", action="store_true", help="include archived ones")
    p.add_argument("--trash", action="store_true", help="list the trash instead")
    p = sub.add_parser("search", help="full-text search across all messages (a hit's 'message N of M' "
                                      "counts along the path `chats show` prints)")
    p.add_argument("query", nargs="+")
    p.add_argument("--limit", type=int, default=20)
    p = sub.add_parser("show", help="print a conversation's active path as Markdown")
    p.add_argument("id", type=int)
    p = sub.add_parser("export", help="export conversations (all, or the ids given)")
    p.add_argument("ids", type=int, nargs="*", metavar="ID")
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    p = sub.add_parser("import", help="import a JSON export (all of it, or nothing)")
    p.add_argument("file", type=Path)


def run(args: argparse.Namespace) -> int:
    from chat.model import ChatStoreError

    try:
        if args.action == "import":
            return _import(args)
        with _open_for_reading(args.db) as store:
            if args.action == "search":
                return _search(store, args)
            if args.action == "show":
                print(store.export_markdown(args.id))
                return 0
            if args.action == "export":
                return _export(store, args)
            return _list(store, getattr(args, "archived", False), getattr(args, "trash", False))
    except ChatStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _open_for_reading(db):
    from chat.model import StoreLockedError
    from chat.store import ChatStore

    try:
        return ChatStore.open(db)
    except StoreLockedError:
        print("(LlamaDesk is open elsewhere: reading the chats read-only)", file=sys.stderr)
        return ChatStore.open(db, read_only=True)


def _list(store, archived: bool, trash: bool) -> int:
    convs = store.list(include_archived=archived, trash=trash)
    if not convs:
        print("the trash is empty" if trash else "no conversations yet")
        return 0
    print(f"{'ID':>5}  {'UPDATED':16}  {'MSGS':>5}  TITLE")
    for c in convs:
        flags = ("[pinned] " if c.pinned else "") + ("[archived] " if c.archived else "")
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.updated))
        print(f"{c.id:>5}  {when:16}  {c.message_count:>5}  {flags}{c.display_title}")
    return 0


def _search(store, args) -> int:
    hits = store.search(" ".join(args.query), limit=args.limit)
    if not hits:
        print("no matches")
        return 0
    for h in hits:
        snippet = " ".join(h.snippet.split())
        where = (f"message {h.position} of {h.path_length}" if h.position is not None
                 else "in another version of the conversation, not on the path `chats show` prints")
        print(f"{h.conversation_id:>5}  {h.conversation_title}  ({h.role}, {where})")
        print(f"       {snippet}")
    return 0


def _export(store, args) -> int:
    ids = args.ids or None
    text = store.export_json(ids) if args.format == "json" else store.export_markdown(ids)
    if args.output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        from common.atomic import atomic_write_text

        atomic_write_text(args.output, text)
        count = len(args.ids) if args.ids else len(store.list(include_archived=True))
        print(f"exported {count} conversation(s) to {args.output}", file=sys.stderr)
    return 0


def _import(args) -> int:
    from chat.store import ChatStore

    with ChatStore.open(args.db) as store:
        ids = store.import_json(args.file)
    print(f"imported {len(ids)} conversation(s) from {args.file.name}")
    return 0
