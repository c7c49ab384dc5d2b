"""Export and import: lossless JSON round trip, readable Markdown, whole refusals."""
from __future__ import annotations

import json

import pytest

from chat.export import close_open_fence
from chat.records import CANCELLED, COMPLETE, ChatImportError
from chat.store import ChatStore

CODE_REPLY = ("Here you go:\n\n```python\ndef greet(name):\n    return f\"¡Hola, {name}! 🦙\"\n```\n\n"
              "Call it with `greet(\"世界\")`.")


@pytest.fixture
def store(tmp_path):
    s = ChatStore.open(tmp_path / "chats.sqlite3")
    yield s
    s.close()


def build_branchy(store) -> int:
    conv = store.create(system_prompt="You are terse.\n\nAnswer in one line.", model="llama-3-8b")
    q = store.add_user_message(conv, "Write a greeting function — in Python, please")
    w = store.start_reply(conv, q, model="llama-3-8b", params={"temperature": 0.7, "top_p": 0.9})
    for piece in CODE_REPLY.split(" "):
        w.append(piece + " ")
    w.finish(COMPLETE, stats={"tokens_per_s": 41.5, "prompt_tokens": 20}, token_count=37)
    alt = store.regenerate(w.message_id)
    store.reply_writer(alt).finish(CANCELLED)
    q2 = store.edit_user_message(q, "Same, in Rust: naïve version")
    w = store.start_reply(conv, q2)
    w.append("```rust\nfn greet() {}\n```")
    w.finish()
    store.switch_to(alt)
    store.set_pinned(conv)
    return conv


def tree_of(store, conv_id):
    """The conversation as comparable data, with ids replaced by tree positions."""
    msgs = store.messages(conv_id)
    pos = {}
    for m in msgs:
        pos[m.id] = (pos[m.parent_id] if m.parent_id else ()) + (
            [s.id for s in store.siblings(m.id)[0]].index(m.id),)
    conv = store.get(conv_id)
    fields = lambda m: (pos[m.id], m.role, m.content, m.created, m.updated, m.model,  # noqa: E731
                        m.params, m.stats, m.token_count, m.state)
    return ((conv.title, conv.title_is_auto, conv.system_prompt, conv.model, conv.pinned,
             conv.archived, conv.created, conv.updated, pos[conv.active_leaf_id]),
            sorted(fields(m) for m in msgs))


def test_json_round_trip_gives_the_identical_tree(store, tmp_path):
    conv = build_branchy(store)
    other = store.create(title="Empty one")
    text = store.export_json()
    assert json.loads(text)["format"] == "llamadesk.chats"
    (tmp_path / "out.json").write_text(text, encoding="utf-8")

    with ChatStore.open(tmp_path / "fresh.sqlite3") as fresh:
        new_ids = fresh.import_json(tmp_path / "out.json").imported
        assert len(new_ids) == 2
        assert tree_of(fresh, new_ids[0]) == tree_of(store, conv)
        assert fresh.get(new_ids[1]).title == "Empty one" and fresh.messages(new_ids[1]) == []
        assert [m.content for m in fresh.active_path(new_ids[0])] == \
            [m.content for m in store.active_path(conv)]
        assert fresh.search("naïve")                      # imported text is indexed
        assert fresh.export_json(new_ids[0]).split('"conversations"')[1] == \
            store.export_json(conv).split('"conversations"')[1].replace(
                f'"id": {conv}', f'"id": {new_ids[0]}')
    assert store.get(other)


def test_markdown_shows_roles_times_branches_and_intact_code(store):
    conv = build_branchy(store)
    store.switch_to(store.messages(conv)[1].id)      # the finished Python answer
    md = store.export_markdown(conv)
    print("\n" + md)
    assert md.startswith("# Write a greeting function — in Python, please\n")
    assert "model llama-3-8b" in md
    assert "> You are terse.\n>\n> Answer in one line." in md
    assert "## User · " in md and "· version 1 of 2" in md
    assert "## Assistant · " in md and "· reply 1 of 2" in md
    assert "```python\ndef greet(name):\n    return f\"¡Hola, {name}! 🦙\"\n```" in md
    both = store.export_markdown([conv, store.create(title="Second")])
    assert "\n---\n\n# Second" in both


def test_an_unfinished_code_block_is_closed_in_markdown():
    assert close_open_fence("text\n```python\nx = 1") == "text\n```python\nx = 1\n```\n"
    assert close_open_fence("```\na\n```\n") == "```\na\n```\n"
    assert close_open_fence("~~~~\n```\nstill code\n") == "~~~~\n```\nstill code\n~~~~\n"


def good_doc(store) -> dict:
    build_branchy(store)
    return json.loads(store.export_json())


@pytest.mark.parametrize("breaks, where", [
    (lambda d, c: d.update(format="something-else"), "format"),
    (lambda d, c: d.update(version=99), "version"),
    (lambda d, c: c["messages"][2].update(role="bot"), "conversations[1].messages[2].role"),
    (lambda d, c: c["messages"][3].update(parent=9999), "conversations[1].messages[3].parent"),
    (lambda d, c: c["messages"][1].update(content=None), "conversations[1].messages[1].content"),
    (lambda d, c: c["messages"][1].update(created="yesterday"),
     "conversations[1].messages[1].created"),
    (lambda d, c: c["messages"][2].update(id=c["messages"][0]["id"]),
     "conversations[1].messages[2].id"),
    (lambda d, c: c.update(active_leaf=12345), "conversations[1].active_leaf"),
    (lambda d, c: c.update(pinned="yes"), "conversations[1].pinned"),
    (lambda d, c: c.update(messages="none"), "conversations[1].messages"),
    (lambda d, c: d["conversations"].append(["not", "an", "object"]), "conversations[2]"),
])
def test_malformed_imports_are_refused_whole_with_the_place(store, breaks, where):
    doc = good_doc(store)
    doc["conversations"].append(json.loads(json.dumps(doc["conversations"][0])))
    breaks(doc, doc["conversations"][1])      # the first conversation stays valid
    before = store._rows("SELECT count(*) FROM messages")[0][0], len(store.list())
    with pytest.raises(ChatImportError) as err:
        store.import_json(json.dumps(doc))
    assert f": {where}:" in str(err.value)
    assert (store._rows("SELECT count(*) FROM messages")[0][0], len(store.list())) == before


def test_broken_json_and_unreadable_files_say_where(store, tmp_path):
    text = store.export_json(build_branchy(store))
    bad = tmp_path / "chats.json"
    bad.write_text(text[:len(text) // 2], encoding="utf-8")
    with pytest.raises(ChatImportError, match=r"chats.json: not valid JSON at line \d+, column \d+"):
        store.import_json(bad)
    bad.write_bytes(b'{"format": "\xff"}')
    with pytest.raises(ChatImportError, match="not UTF-8"):
        store.import_json(bad)
    with pytest.raises(ChatImportError, match="cannot read"):
        store.import_json(tmp_path / "missing.json")
    with pytest.raises(ChatImportError, match="top level"):
        store.import_json("[1, 2]")
    assert len(store.list()) == 1


def test_a_late_database_failure_rolls_the_whole_import_back(store):
    doc = good_doc(store)
    # three new conversations (not the one already here, which an import would skip)
    doc["conversations"] = [dict(c, uuid=None, created=c["created"] + i)
                            for i, c in enumerate(doc["conversations"] * 3, 1)]
    store._rows("CREATE TEMP TRIGGER no_rust BEFORE INSERT ON messages "
                "WHEN new.content LIKE '%rust%' BEGIN SELECT RAISE(ABORT, 'refused'); END")
    with pytest.raises(Exception, match="refused"):
        store.import_json(json.dumps(doc))
    assert len(store.list()) == 1
