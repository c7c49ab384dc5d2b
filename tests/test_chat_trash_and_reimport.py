"""The trash from the command line (delete, restore, empty-trash) and imports that skip
conversations already here."""
from __future__ import annotations

import io
import json

import pytest

import main
from chat.store import ChatStore


@pytest.fixture
def three(llamadesk_home):
    with ChatStore.open() as store:
        ids = []
        for title, text in (("Alpacas", "Fleece?"), ("Llamas", "Wool?"), ("Vicuñas", "Rare?")):
            conv = store.create(title=title)
            store.add_user_message(conv, text)
            w = store.start_reply(conv)
            w.append(f"About {title.lower()}.")
            w.finish()
            ids.append(conv)
        return ids


def _listing(trash: bool = False) -> list[str]:
    with ChatStore.open() as store:
        return [c.display_title for c in store.list(trash=trash)]


# --- the store ---------------------------------------------------------------------

def test_restore_says_whether_there_was_anything_to_restore(three):
    a, b, _ = three
    with ChatStore.open() as store:
        store.delete(a)
        assert store.restore(a) is True and not store.get(a).in_trash
        assert store.restore(b) is False          # never in the trash: nothing changes
        store.delete(b)
        store.delete(a)
        assert [c.id for c in store.list(trash=True)] == [a, b]      # most recently deleted first
        assert store.empty_trash() == 2 and store.list(trash=True) == []


# --- the command line ----------------------------------------------------------------

def test_delete_restore_and_list_the_trash(three, capsys):
    a, b, c = three
    assert main.main(["chats", "delete", str(a), str(c)]) == 0
    assert capsys.readouterr().out.splitlines() == ["moved 1 “Alpacas” to the trash",
                                                    "moved 3 “Vicuñas” to the trash"]
    assert main.main(["chats", "list", "--trash"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "DELETED" in out[0] and "Alpacas" in out[-2] and "Vicuñas" in out[1]
    assert "chats restore ID" in out[-1] and "chats empty-trash" in out[-1]
    assert main.main(["chats", "restore", str(c)]) == 0
    assert capsys.readouterr().out == "restored 3 “Vicuñas”\n"
    assert _listing() == ["Vicuñas", "Llamas"] and _listing(trash=True) == ["Alpacas"]
    assert main.main(["chats", "restore", str(b)]) == 1
    assert capsys.readouterr().err == "error: conversation 2 “Llamas” is not in the trash\n"
    assert main.main(["chats", "restore", "99"]) == 1
    assert "no conversation with id 99" in capsys.readouterr().err


def test_empty_trash_asks_first_or_needs_yes(three, capsys, monkeypatch):
    a, b, _ = three
    assert main.main(["chats", "delete", str(a), str(b)]) == 0
    capsys.readouterr()
    # not a terminal (a script, a pipe): refuse without --yes, delete nothing
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert main.main(["chats", "empty-trash"]) == 1
    assert capsys.readouterr().err == ("error: this deletes 2 conversations for good; "
                                       "add --yes to confirm\n")
    assert len(_listing(trash=True)) == 2
    # a terminal: ask; anything but yes keeps them
    answers = iter(["n", "yes"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    asked = []
    monkeypatch.setattr("builtins.input", lambda q: (asked.append(q), next(answers))[1])
    assert main.main(["chats", "empty-trash"]) == 1
    assert capsys.readouterr().out == "nothing deleted\n" and len(_listing(trash=True)) == 2
    assert main.main(["chats", "empty-trash"]) == 0
    assert asked == ["Delete 2 conversations in the trash for good? [y/N] "] * 2
    assert capsys.readouterr().out == "deleted 2 conversations for good\n"
    assert _listing(trash=True) == [] and _listing() == ["Vicuñas"]
    assert main.main(["chats", "empty-trash", "--yes"]) == 0
    assert capsys.readouterr().out == "the trash is empty\n"
    assert main.main(["chats", "delete", "3"]) == 0
    assert main.main(["chats", "empty-trash", "--yes"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "deleted 1 conversation for good"


# --- importing twice -----------------------------------------------------------------

def test_importing_the_same_file_twice_skips_what_is_there(three, tmp_path, capsys):
    out = tmp_path / "all.json"
    assert main.main(["chats", "export", "--format", "json", "-o", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert all(len(c["uuid"]) == 36 for c in doc["conversations"])
    other = tmp_path / "other.sqlite3"
    assert main.main(["chats", "--db", str(other), "import", str(out)]) == 0
    assert capsys.readouterr().out == "Imported 3 conversations from all.json.\n"
    assert main.main(["chats", "--db", str(other), "import", str(out)]) == 0
    assert capsys.readouterr().out == "Imported 0 conversations from all.json; skipped 3 already present.\n"
    with ChatStore.open(other) as store:
        assert len(store.list()) == 3
        # the copy keeps each conversation's identity: its own export is recognised too
        assert sorted(c.uuid for c in store.list()) == sorted(c["uuid"] for c in doc["conversations"])
        store.delete(store.list()[0].id)
    # again: everything is already there, and one of them in the trash is named as such
    assert main.main(["chats", "--db", str(other), "import", str(out)]) == 0
    assert capsys.readouterr().out == ("Imported 0 conversations from all.json; skipped 3 already "
                                       "present (1 of them in the trash).\n")


def test_an_export_from_before_uuids_is_recognised_by_its_messages(three, tmp_path):
    with ChatStore.open() as store:
        doc = json.loads(store.export_json())
        for conv in doc["conversations"]:
            del conv["uuid"]                      # as LlamaDesk wrote exports before
        old = json.dumps(doc)
        assert store.import_json(old).summary() == "Imported 0 conversations; skipped 3 already present."
        # a conversation that grew since, or a new one, does come in
        doc["conversations"][0]["messages"].append(dict(doc["conversations"][0]["messages"][-1], id=999,
                                                        parent=doc["conversations"][0]["messages"][-1]["id"],
                                                        content="More."))
        doc["conversations"][1]["created"] += 1
        result = store.import_json(json.dumps(doc))
        assert (len(result.imported), result.skipped) == (2, 1)
        assert result.summary("old.json") == "Imported 2 conversations from old.json; skipped 1 already present."
        # the same conversation twice in one file comes in once
        doc = json.loads(store.export_json(result.imported[0]))
        doc["conversations"] *= 2
        for conv in doc["conversations"]:
            conv["uuid"] = None
            conv["created"] += 7
        again = store.import_json(json.dumps(doc))
        assert (len(again.imported), again.skipped) == (1, 1)
        assert len(store.list()) == 6
