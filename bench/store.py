"""Chat store at scale: 1,000 conversations / 100,000 messages, the largest 5,000.

    python bench/store.py [--conversations 1000] [--messages 100000] [--largest 5000]

Builds the database through the store's own JSON import (one transaction), then
times, each as the best of a few repeats: opening the store, listing conversations,
loading the largest conversation's active path, and full-text searches across every
message. Anchors, measured in the same run on the same file: a plain indexed
``SELECT`` of the largest conversation's rows (the floor for loading it) and a
``LIKE '%word%'`` scan over all messages (what search would cost without FTS5).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chat.store import ChatStore  # noqa: E402

VOCAB_SIZE = 5000
RARE = "xylophone"        # planted in about 20 messages
COMMON = "llama"          # planted in about 10% of messages


def make_vocab(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(VOCAB_SIZE)]


def sizes(conversations: int, messages: int, largest: int) -> list[int]:
    rest = messages - largest
    base, extra = divmod(rest, conversations - 1)
    return [largest] + [base + (1 if i < extra else 0) for i in range(conversations - 1)]


def build_document(conversations: int, messages: int, largest: int, seed: int) -> dict:
    rng = random.Random(seed)
    vocab = make_vocab(rng)
    rare_every = max(1, messages // 20)
    t0, serial, convs = 1.7e9, 0, []
    for c, n in enumerate(sizes(conversations, messages, largest)):
        msgs, parent, j = [], None, 0
        while j < n:
            serial += 1
            role = "user" if j % 2 == 0 else "assistant"
            words = rng.choices(vocab, k=rng.randint(8, 30) if role == "user" else rng.randint(20, 120))
            if rng.random() < 0.1:
                words[rng.randrange(len(words))] = COMMON
            if serial % rare_every == 0:
                words[0] = RARE
            text = " ".join(words)
            if role == "assistant" and rng.random() < 0.1:
                text += "\n\n```python\nprint('hello')\n```"
            # now and then a regenerated reply: an earlier sibling, off the active path
            if role == "assistant" and 3 <= j < n - 2 and rng.random() < 0.03:
                msgs.append({"id": serial, "parent": parent, "role": "assistant",
                             "content": text[::-1], "created": t0 + serial, "state": "complete"})
                serial += 1
                j += 1
            msgs.append({"id": serial, "parent": parent, "role": role, "content": text,
                         "created": t0 + serial, "updated": t0 + serial, "model": "llama-3-8b",
                         "params": {"temperature": 0.7} if role == "assistant" else {},
                         "stats": {"tokens_per_s": 40.0} if role == "assistant" else {},
                         "token_count": len(words), "state": "complete"})
            parent = serial
            j += 1
        convs.append({"title": f"conversation {c}", "created": t0 + c, "updated": t0 + serial,
                      "active_leaf": parent, "messages": msgs})
    return {"format": "llamadesk.chats", "version": 1, "conversations": convs}


def best_of(repeats: int, fn):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conversations", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--largest", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, help="where to build the database (default: a temp dir)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        db = folder / "bench-chats.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)

        start = time.perf_counter()
        text = json.dumps(build_document(args.conversations, args.messages, args.largest, args.seed))
        t_generate = time.perf_counter() - start
        with ChatStore.open(db) as store:
            t_import, result = best_of(1, lambda: store.import_json(text))
            total = store._rows("SELECT count(*) FROM messages")[0][0]
            store._rows("PRAGMA wal_checkpoint(TRUNCATE)")
        size = db.stat().st_size
        largest_id = result.imported[0]

        def reopen():
            ChatStore.open(db).close()

        rows = []
        t_open, _ = best_of(args.repeats, reopen)
        rows.append(("open the store (lock, migrate check, recovery)", t_open, None, None))
        with ChatStore.open(db) as store:
            t_list, convs = best_of(args.repeats, lambda: store.list(include_archived=True))
            rows.append((f"list {len(convs)} conversations with counts", t_list, None, None))
            t_path, path = best_of(args.repeats, lambda: store.active_path(largest_id))
            t_rows, raw = best_of(args.repeats, lambda: store._rows(
                "SELECT * FROM messages WHERE conversation_id = ?", (largest_id,)))
            rows.append((f"active path of the largest ({len(path)} of {len(raw)} messages)",
                         t_path, t_rows, "plain SELECT of its rows"))
            t_sib, _ = best_of(args.repeats, lambda: store.siblings(path[len(path) // 2].id))
            rows.append(("siblings of a message in it", t_sib, None, None))
            for word in (RARE, COMMON, "llama xylo"):
                t_s, hits = best_of(args.repeats, lambda: store.search(word, limit=50))
                like = word.split()[0]
                t_like, _ = best_of(1, lambda: store._rows(
                    "SELECT id FROM messages WHERE content LIKE ?", (f"%{like}%",)))
                rows.append((f"search {word!r} across all ({len(hits)} hits shown)", t_s, t_like,
                             "LIKE scan"))
            t_md, md = best_of(1, lambda: store.export_markdown(largest_id))
            rows.append((f"Markdown export of the largest ({len(md) / 1e6:.1f} MB)", t_md, None, None))

    print(f"chat store benchmark: {len(result.imported)} conversations, {total} messages "
          f"(largest {args.largest}), best of {args.repeats}")
    print(f"built in {t_generate:.1f} s (generate) + {t_import:.1f} s (import, one transaction); "
          f"database {size / 1e6:.1f} MB")
    print()
    print(f"| {'operation':58} | {'time':>10} | {'anchor':>10} | ratio | anchor is")
    print(f"|{'-' * 60}|{'-' * 12}|{'-' * 12}|-------|----------")
    for name, t, anchor, what in rows:
        a = f"{anchor * 1e3:7.2f} ms" if anchor else " " * 10
        r = f"{t / anchor:5.2f}" if anchor else " " * 5
        print(f"| {name:58} | {t * 1e3:7.2f} ms | {a} | {r} | {what or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
