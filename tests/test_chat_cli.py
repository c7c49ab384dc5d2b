"""`python main.py chats`: list, search, show, export, import."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import main
from chat.store import ChatStore

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def filled(llamadesk_home):
    with ChatStore.open() as store:
        conv = store.create(title="Llama care")
        store.add_user_message(conv, "How often do llamas need shearing?")
        w = store.start_reply(conv)
        w.append("Once a year, in spring.\n\n```text\nshear: yearly\n```")
        w.finish()
        pinned = store.create(title="Pinned notes")
        store.set_pinned(pinned)
        return conv, pinned


def test_list_search_show(filled, capsys):
    conv, pinned = filled
    assert main.main(["chats"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "TITLE" in out[0] and "[pinned] Pinned notes" in out[1] and "Llama care" in out[2]
    assert main.main(["chats", "search", "shearing"]) == 0
    out = capsys.readouterr().out
    assert "Llama care" in out and "[shearing]" in out
    assert main.main(["chats", "search", "zzzz"]) == 0 and "no matches" in capsys.readouterr().out
    assert main.main(["chats", "show", str(conv)]) == 0
    assert "```text\nshear: yearly\n```" in capsys.readouterr().out
    assert main.main(["chats", "show", "999"]) == 1
    assert "no conversation with id 999" in capsys.readouterr().err


def test_export_and_import_round_trip(filled, tmp_path, capsys):
    out_file = tmp_path / "all.json"
    assert main.main(["chats", "export", "--format", "json", "-o", str(out_file)]) == 0
    assert "exported 2 conversations" in capsys.readouterr().err
    assert len(json.loads(out_file.read_text(encoding="utf-8"))["conversations"]) == 2
    other = tmp_path / "other.sqlite3"
    assert main.main(["chats", "--db", str(other), "import", str(out_file)]) == 0
    assert capsys.readouterr().out == "Imported 2 conversations from all.json.\n"
    with ChatStore.open(other) as store:
        assert sorted(c.display_title for c in store.list()) == ["Llama care", "Pinned notes"]
    md = tmp_path / "all.md"
    assert main.main(["chats", "export", "-o", str(md)]) == 0
    assert md.read_text(encoding="utf-8").count("\n---\n") == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "llamadesk.chats", "version": 1, "conversations": [{}]}')
    assert main.main(["chats", "import", str(bad)]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: bad.json: conversations[0].created: expected a time in seconds since 1970, "
        "found null")


def test_while_the_app_holds_the_database(filled, tmp_path):
    """Another process holds it: reading falls back to read-only, importing says why not."""
    with ChatStore.open():      # this test process plays the open app
        run = lambda *a: subprocess.run([sys.executable, "main.py", "chats", *a],  # noqa: E731
                                        cwd=ROOT, capture_output=True, text=True)
        listing = run("list")
        assert listing.returncode == 0 and "Llama care" in listing.stdout
        assert "read-only" in listing.stderr
        exported = tmp_path / "x.json"
        assert run("export", "--format", "json", "-o", str(exported)).returncode == 0
        refused = run("import", str(exported))
        assert refused.returncode == 1
        assert "already open in another LlamaDesk window" in refused.stderr


def test_search_numbers_messages_as_list_counts_them(filled, capsys):
    """`chats list` counts the messages `chats show` prints; a hit says which of them it is."""
    with ChatStore.open() as store:
        conv = store.create(title="Knitting")
        first_reply = None
        for question in ("Which wool for socks?", "And for a scarf?", "How many skeins?"):
            store.add_user_message(conv, question)
            w = store.start_reply(conv)
            w.append(f"An answer about {question.split()[-1].rstrip('?')}.")
            w.finish()
            first_reply = first_reply or w.message_id
        # An alternative reply to the first question: a branch, not on the shown path.
        alt = store.regenerate(first_reply)
        w = store.reply_writer(alt)
        w.append("Merino is a classic alpaca alternative.")
        w.finish()
        store.switch_to(store.active_path(conv)[-1].id)
        assert len(store.messages(conv)) > 6 and len(store.active_path(conv)) == 2
        store.switch_to(first_reply)
        path = store.active_path(conv)
    assert len(path) == 6 and path[-1].content == "An answer about skeins."
    assert main.main(["chats"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.endswith("Knitting"))
    assert row.split()[3] == "6"
    assert main.main(["chats", "search", "scarf"]) == 0
    hits = capsys.readouterr().out
    assert "(user, message 3 of 6)" in hits and "(assistant, message 4 of 6)" in hits
    assert main.main(["chats", "search", "merino"]) == 0
    assert "in another version of the conversation" in capsys.readouterr().out
