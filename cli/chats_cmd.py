"""`llamadesk chats`: list, search, show, export and import conversations; the trash.

Reading works while the app is open (the store is then opened read-only); importing
and changing the trash need the app closed, and say so.
"""
from __future__ import annotations

import argparse
import sys
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
    p = sub.add_parser("import", help="import a JSON export (all of it, or nothing; "
                                      "conversations already here are skipped)")
    p.add_argument("file", type=Path)
    p = sub.add_parser("delete", help="move conversations to the trash")
    p.add_argument("ids", type=int, nargs="+", metavar="ID")
    p = sub.add_parser("restore", help="bring conversations back from the trash")
    p.add_argument("ids", type=int, nargs="+", metavar="ID")
    p = sub.add_parser("empty-trash", help="delete every conversation in the trash for good")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask first")


def run(args: argparse.Namespace) -> int:
    from chat.records import ChatStoreError

    try:
        if args.action in _WRITERS:
            return _WRITERS[args.action](args)
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
    from chat.records import StoreLockedError
    from chat.store import ChatStore

    try:
        return ChatStore.open(db)
    except StoreLockedError:
        print("(LlamaDesk is open elsewhere: reading the chats read-only)", file=sys.stderr)
        return ChatStore.open(db, read_only=True)


def _list(store, archived: bool, trash: bool) -> int:
    from chat.records import when_text

    convs = store.list(include_archived=archived, trash=trash)
    if not convs:
        print("the trash is empty" if trash else "no conversations yet")
        return 0
    print(f"{'ID':>5}  {'DELETED' if trash else 'UPDATED':16}  {'MSGS':>5}  TITLE")
    for c in convs:
        flags = ("[pinned] " if c.pinned else "") + ("[archived] " if c.archived else "")
        when = when_text(c.deleted if trash else c.updated)
        print(f"{c.id:>5}  {when:16}  {c.message_count:>5}  {flags}{_one_line(c.display_title)}")
    if trash:
        print("(restore with `chats restore ID`; `chats empty-trash` deletes them for good)")
    return 0


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "?"


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
    from common.task import plural

    ids = args.ids or None
    text = store.export_json(ids) if args.format == "json" else store.export_markdown(ids)
    if args.output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        from common.atomic import atomic_write_text

        atomic_write_text(args.output, text)
        count = len(args.ids) if args.ids else len(store.list(include_archived=True))
        print(f"exported {plural(count, 'conversation')} to {args.output}", file=sys.stderr)
    return 0


def _import(args) -> int:
    from chat.store import ChatStore

    with ChatStore.open(args.db) as store:
        result = store.import_json(args.file)
    print(result.summary(args.file.name))
    return 0


def _delete(args) -> int:
    from chat.store import ChatStore

    with ChatStore.open(args.db) as store:
        for conv_id in args.ids:
            title = store.get(conv_id).display_title
            store.delete(conv_id)
            print(f"moved {conv_id} “{_one_line(title)}” to the trash")
    return 0


def _restore(args) -> int:
    from chat.store import ChatStore

    status = 0
    with ChatStore.open(args.db) as store:
        for conv_id in args.ids:
            title = _one_line(store.get(conv_id).display_title)
            if store.restore(conv_id):
                print(f"restored {conv_id} “{title}”")
            else:
                print(f"error: conversation {conv_id} “{title}” is not in the trash", file=sys.stderr)
                status = 1
    return status


def _empty_trash(args) -> int:
    from chat.store import ChatStore
    from common.task import plural

    with ChatStore.open(args.db) as store:
        ids = [c.id for c in store.list(trash=True)]
        count = len(ids)
        if not count:
            print("the trash is empty")
            return 0
        what = plural(count, "conversation")
        if not args.yes:
            if not sys.stdin.isatty():
                print(f"error: this deletes {what} for good; add --yes to confirm", file=sys.stderr)
                return 1
            try:
                answer = input(f"Delete {what} in the trash for good? [y/N] ")
            except (EOFError, KeyboardInterrupt):
                answer = ""
                print()
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 1
        print(f"deleted {plural(store.empty_trash(), 'conversation')} for good")
    if args.db is None:             # their saved KV caches (engine.snapshots) go with them
        from engine.snapshots import forget_conversations

        forget_conversations(ids)
    return 0


_WRITERS = {"import": _import, "delete": _delete, "restore": _restore, "empty-trash": _empty_trash}
