"""Hostile chat imports are refused whole, naming the value's place; whatever the store
holds, `chats list/show/export` still work. Example cases, then Hypothesis properties
(profile "ci" by default, HYPOTHESIS_PROFILE=thorough for many more examples)."""
from __future__ import annotations

import json
import sqlite3

import pytest
from hypothesis import given, strategies as st

import main
from chat import importer
from chat.records import MAX_TIME, ROLES, STATES, ChatImportError
from chat.store import ChatStore


def base_doc() -> dict:
    """A valid export: one conversation, question, answer and a follow-up."""
    msgs = [
        {"id": 1, "parent": None, "role": "user", "content": "Hi", "created": 100.0},
        {"id": 2, "parent": 1, "role": "assistant", "content": "Hello", "created": 101.0,
         "params": {"temperature": 0.7}, "stats": {"tokens_per_s": 41.5}, "token_count": 3},
        {"id": 3, "parent": 2, "role": "user", "content": "Bye", "created": 102.0},
    ]
    conv = {"title": "Greetings", "created": 100.0, "updated": 102.0, "active_leaf": 3, "messages": msgs}
    return {"format": "llamadesk.chats", "version": 1, "conversations": [conv]}


def nest(levels: int):
    value: object = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def _set(path: str, value):
    def change(doc):
        target = doc
        keys = path.replace("]", "").replace("[", ".").split(".")
        for key in keys[:-1]:
            target = target[int(key) if key.isdigit() else key]
        target[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return change


M1 = "conversations[1].messages[1]"
CASES = [
    # (what, change, text instead of json.dumps or None, the message after "the imported text: ")
    ("infinite time", _set(f"{M1}.created", float("inf")), None,
     f"{M1}.created: Infinity is not a valid time"),
    ("NaN time", _set("conversations[1].updated", float("nan")), None,
     "conversations[1].updated: NaN is not a valid time"),
    ("time before 1970", _set(f"{M1}.updated", -1), None,
     f"{M1}.updated: -1 is not a valid time (before 1970)"),
    ("time after 9999", _set("conversations[1].created", 1e300), None,
     "conversations[1].created: 1e+300 is not a valid time (after the year 9999)"),
    ("a 401-digit time", _set("conversations[1].created", "HUGE"), ("\"HUGE\"", "1" + "0" * 400),
     "conversations[1].created: 100000000000… (401 digits) is not a valid time"),
    ("token count past SQLite", _set(f"{M1}.token_count", 2 ** 63), None,
     f"{M1}.token_count: 9223372036854775808 is too large to store (whole numbers are 64-bit)"),
    ("negative token count", _set(f"{M1}.token_count", -5), None,
     f"{M1}.token_count: expected 0 or more, found -5"),
    ("a 5000-digit id", _set("conversations[1].messages[0].id", "HUGE"), ("\"HUGE\"", "9" * 5000),
     "conversations[1].messages[0].id: 999999999999… (5000 digits) is too large to store "
     "(whole numbers are 64-bit)"),
    ("lone surrogate in content", _set(f"{M1}.content", "ok"), ("\"ok\"", "\"ok \\ud800 no\""),
     f"{M1}.content: not valid Unicode: a lone surrogate (\\ud800) at character 3"),
    ("lone surrogate in a title", _set("conversations[1].title", "T"), ("\"T\"", "\"\\udfff\""),
     "conversations[1].title: not valid Unicode: a lone surrogate (\\udfff) at character 0"),
    ("lone surrogate in a params key", _set(f"{M1}.params", {"K": 1}), ("\"K\"", "\"\\ud83d\""),
     f"{M1}.params[\"\\ud83d\"]: not valid Unicode: a lone surrogate (\\ud83d) at character 0"),
    ("NaN inside stats", _set(f"{M1}.stats", {"tokens_per_s": float("nan")}), None,
     f"{M1}.stats.tokens_per_s: NaN is not a valid number"),
    ("huge number inside params", _set(f"{M1}.params", {"seed": [1, -2 ** 70]}), None,
     f"{M1}.params.seed[1]: -11805916207… (22 digits) is too large to store (whole numbers are 64-bit)"),
    ("params nested 40 deep", _set(f"{M1}.params", nest(40)), None,
     f"{M1}.params" + ".a" * 32 + ": nested more than 32 levels deep"),
    ("a bad uuid", _set("conversations[1].uuid", "not-a-uuid"), None,
     "conversations[1].uuid: expected a UUID or null, found \"not-a-uuid\""),
    ("a document nested 100000 deep", None, ("", "[" * 100000 + "]" * 100000), None),
]


@pytest.fixture
def store(tmp_path):
    s = ChatStore.open(tmp_path / "chats.sqlite3")
    conv = s.create(title="Already here")
    s.add_user_message(conv, "Keep me")
    yield s
    s.close()


def _counts(store):
    return tuple(store._rows(f"SELECT count(*) FROM {t}")[0][0] for t in ("conversations", "messages"))


@pytest.mark.parametrize("what, change, swap, message", CASES, ids=[c[0] for c in CASES])
def test_a_hostile_value_is_refused_with_its_place_and_nothing_is_imported(store, what, change, swap, message):
    doc = base_doc()
    doc["conversations"].append(json.loads(json.dumps(doc["conversations"][0])))   # a good one first
    doc["conversations"][1]["created"] = 50.0
    if change is not None:
        change(doc)                               # the second one goes bad
    text = json.dumps(doc)
    if swap is not None:
        old, new = swap
        text = new if not old else text.replace(old, new, 1)
    before = _counts(store)
    with pytest.raises(ChatImportError) as err:
        store.import_json(text)
    print(err.value)
    expected = message or "nested too deeply to be a chat export"
    assert str(err.value) == f"the imported text: {expected}"
    assert _counts(store) == before


def test_a_file_larger_than_the_bound_is_not_read(store, tmp_path, monkeypatch):
    big = tmp_path / "big.json"
    big.write_text(json.dumps(base_doc()), encoding="utf-8")
    monkeypatch.setattr(importer, "MAX_BYTES", 100)
    with pytest.raises(ChatImportError, match=r"^big.json: \d+ B is more than a chat export can be \(100 B\)$"):
        store.import_json(big)


def test_the_cli_refuses_with_one_line_and_imports_nothing(tmp_path, capsys):
    doc = base_doc()
    doc["conversations"][0]["messages"][1]["created"] = float("inf")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    assert main.main(["chats", "import", str(bad)]) == 1
    assert capsys.readouterr().err == ("error: bad.json: conversations[0].messages[1].created: "
                                       "Infinity is not a valid time\n")
    assert main.main(["chats", "list"]) == 0
    assert capsys.readouterr().out == "no conversations yet\n"


# --- whatever the store holds, reading it works -------------------------------------------

DAMAGE = [
    "UPDATE conversations SET created = 9e999, updated = -9e999 WHERE id = {a}",
    "UPDATE conversations SET updated = 1e300, title = CAST(x'ff41fe' AS TEXT) WHERE id = {b}",
    "UPDATE conversations SET created = 'yesterday', updated = x'00ff', system_prompt = x'80' WHERE id = {c}",
    "UPDATE conversations SET deleted = 'never' WHERE id = {d}",
    "UPDATE messages SET created = 9e999, updated = NULL, params = 'not json', stats = '[1, 2]', "
    "token_count = 'many', content = CAST(x'c328' AS TEXT) WHERE conversation_id = {a}",
    "UPDATE messages SET params = '{{\"x\": NaN, \"y\": \"\\ud800\"}}', stats = '{{\"z\": Infinity}}', "
    "role = 'narrator', state = 'odd', created = -1 WHERE conversation_id = {b}",
    # a parent loop, as no LlamaDesk writes it
    "UPDATE messages SET parent_id = (SELECT max(id) FROM messages WHERE conversation_id = {c}) "
    "WHERE id = (SELECT min(id) FROM messages WHERE conversation_id = {c})",
]


def test_list_show_and_export_never_crash_on_what_another_tool_wrote(llamadesk_home, tmp_path, capsys):
    with ChatStore.open() as store:
        ids = {}
        for key in "abcd":
            conv = ids[key] = store.create(title=f"Chat {key}")
            q = store.add_user_message(conv, f"Question {key}")
            w = store.start_reply(conv, q, params={"temperature": 0.5})
            w.append(f"Answer {key}")
            w.finish(stats={"tokens_per_s": 10.0}, token_count=2)
        store.delete(ids["d"])
        path = store.path
    db = sqlite3.connect(path)
    db.execute("PRAGMA ignore_check_constraints = 1")
    for sql in DAMAGE:
        db.execute(sql.format(**ids))
    db.commit()
    db.close()

    assert main.main(["chats", "list"]) == 0
    listing = capsys.readouterr().out
    print(listing)
    assert listing.count("unknown time") == 3 and "\ufffdA\ufffd" in listing
    assert main.main(["chats", "list", "--trash"]) == 0
    assert "Chat d" in capsys.readouterr().out
    assert main.main(["chats", "search", "answer"]) == 0
    assert "[Answer] c" in capsys.readouterr().out
    for conv in ids.values():
        assert main.main(["chats", "show", str(conv)]) == 0
    shown = capsys.readouterr().out
    assert "unknown time" in shown and "Answer b" in shown and "\ufffd(" in shown
    out = tmp_path / "all.json"
    assert main.main(["chats", "export", "--format", "json", "-o", str(out)]) == 0
    assert main.main(["chats", "export", "-o", str(tmp_path / "all.md")]) == 0
    capsys.readouterr()
    doc = json.loads(out.read_text(encoding="utf-8"),              # strict JSON: no NaN, no Infinity
                     parse_constant=lambda name: pytest.fail(f"{name} in the export"))
    by_title = {c["title"]: c for c in doc["conversations"]}
    assert by_title["Chat a"]["created"] is None and by_title["Chat a"]["messages"][0]["params"] == {}
    b_reply = by_title["\ufffdA\ufffd"]["messages"][1]
    assert b_reply["params"] == {}                  # NaN and a lone surrogate inside: dropped
    assert b_reply["stats"] == {"z": None}          # Infinity: null
    assert b_reply["created"] is None
    # the damaged values export as null (strict JSON); importing that says where, and adds nothing
    fresh = tmp_path / "fresh.sqlite3"
    assert main.main(["chats", "--db", str(fresh), "import", str(out)]) == 1
    assert capsys.readouterr().err == ("error: all.json: conversations[0].updated: expected a time in "
                                       "seconds since 1970, found null\n")


# --- properties ---------------------------------------------------------------------------

ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)   # lone surrogates too
ANY_NUMBER = st.one_of(st.integers(), st.integers(min_value=2 ** 62, max_value=2 ** 70),
                       st.floats(allow_nan=True, allow_infinity=True))
ANY_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), ANY_NUMBER, ANY_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(ANY_TEXT, inner, max_size=4)),
    max_leaves=20)


def _paths(value, prefix=()):
    """Every place in a JSON value: tuples of keys and indexes."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _import_or_refuse(store, text: str):
    before = _counts(store)
    try:
        result = store.import_json(text)
    except ChatImportError as exc:
        assert str(exc).startswith("the imported text: ")
        assert _counts(store) == before                     # all or nothing
        return None
    assert _counts(store)[0] == before[0] + len(result.imported)
    return result


@given(place=st.integers(min_value=0), value=ANY_JSON)
def test_any_value_anywhere_is_imported_or_refused_whole(tmp_path_factory, place, value):
    doc = base_doc()
    places = [p for p in _paths(doc) if p]
    where = places[place % len(places)]
    target = doc
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    with ChatStore.open(tmp_path_factory.mktemp("prop") / "c.sqlite3") as store:
        result = _import_or_refuse(store, json.dumps(doc))
        if result is not None:       # what came in reads back, exports as strict JSON, re-imports as present
            for conv in result.imported:
                store.export_markdown(conv)
            again = json.loads(store.export_json(), parse_constant=lambda c: pytest.fail(f"{c} exported"))
            assert store.import_json(json.dumps(again)).skipped == len(result.imported)


@given(ANY_JSON)
def test_any_json_document_is_imported_or_refused_whole(tmp_path_factory, doc):
    with ChatStore.open(tmp_path_factory.mktemp("prop") / "c.sqlite3") as store:
        _import_or_refuse(store, json.dumps({"format": "llamadesk.chats", "version": 1, "conversations": doc}))
        _import_or_refuse(store, json.dumps(doc if isinstance(doc, (dict, list)) else [doc]))


GOOD_TEXT = st.text(max_size=30)          # Hypothesis' text: valid Unicode, NUL and all
GOOD_TIME = st.one_of(st.floats(min_value=0, max_value=MAX_TIME), st.integers(0, int(MAX_TIME)))
SIMPLE = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 63, 2 ** 63 - 1),
                   st.floats(allow_nan=False, allow_infinity=False), GOOD_TEXT)


@st.composite
def conversations(draw):
    n = draw(st.integers(0, 6))
    messages = []
    for i in range(n):
        messages.append({
            "id": draw(st.integers(-2 ** 63, 2 ** 63 - 1).filter(lambda x: x not in [m["id"] for m in messages])),
            "parent": draw(st.sampled_from([None] + [m["id"] for m in messages])),
            "role": draw(st.sampled_from(ROLES)), "content": draw(GOOD_TEXT), "created": draw(GOOD_TIME),
            "updated": draw(st.one_of(st.none(), GOOD_TIME)), "model": draw(st.one_of(st.none(), GOOD_TEXT)),
            "params": draw(st.one_of(st.none(), st.dictionaries(GOOD_TEXT, SIMPLE, max_size=3))),
            "stats": draw(st.one_of(st.none(), st.dictionaries(GOOD_TEXT, SIMPLE, max_size=3))),
            "token_count": draw(st.one_of(st.none(), st.integers(0, 2 ** 63 - 1))),
            "state": draw(st.sampled_from(STATES)),
        })
    return {"uuid": draw(st.one_of(st.none(), st.uuids().map(str))), "title": draw(st.one_of(st.none(), GOOD_TEXT)),
            "title_is_auto": draw(st.booleans()), "system_prompt": draw(st.one_of(st.none(), GOOD_TEXT)),
            "model": draw(st.one_of(st.none(), GOOD_TEXT)), "pinned": draw(st.booleans()),
            "archived": draw(st.booleans()), "created": draw(GOOD_TIME), "updated": draw(GOOD_TIME),
            "active_leaf": draw(st.sampled_from([None] + [m["id"] for m in messages])), "messages": messages}


def _comparable(conv: dict) -> tuple:
    """A conversation record without its file-local ids (messages by position instead)."""
    pos = {m["id"]: i for i, m in enumerate(conv["messages"])}
    msgs = [(pos.get(m["parent"]), m["role"], m["content"], m["created"],
             m["updated"] if m.get("updated") is not None else m["created"], m["model"],
             m["params"] or {}, m["stats"] or {}, m["token_count"],
             "interrupted" if m["state"] == "streaming" else m["state"]) for m in conv["messages"]]
    keys = ("title_is_auto", "system_prompt", "model", "pinned", "archived", "created", "updated")
    # an empty title is no title (the chat shows "New chat" either way)
    return (conv["title"] or None,) + tuple(conv[k] for k in keys) + (pos.get(conv["active_leaf"]), msgs)


@given(st.lists(conversations(), max_size=3,
                unique_by=(lambda c: c["created"], lambda c: c["uuid"] or str(c["created"]))))
def test_valid_exports_round_trip_and_a_second_import_skips_them_all(tmp_path_factory, convs):
    doc = {"format": "llamadesk.chats", "version": 1, "conversations": convs}
    with ChatStore.open(tmp_path_factory.mktemp("prop") / "c.sqlite3") as store:
        result = store.import_json(json.dumps(doc))
        assert result.skipped == 0 and len(result.imported) == len(convs)
        exported = json.loads(store.export_json(result.imported))["conversations"]
        assert [_comparable(c) for c in exported] == [_comparable(c) for c in convs]
        assert [c["uuid"] for c in exported if c["uuid"]] == [c["uuid"] for c in exported]
        assert [c["uuid"] for c in convs if c["uuid"]] == [e["uuid"] for c, e in zip(convs, exported) if c["uuid"]]
        if result.imported:
            store.export_markdown(result.imported)
        again = store.import_json(json.dumps({**doc, "conversations": exported}))
        assert again.imported == [] and again.skipped == len(exported)
