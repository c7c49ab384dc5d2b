"""Conversations and their message trees: branching, regenerating, switching, streaming."""
from __future__ import annotations

import threading

import pytest

from chat.records import (CANCELLED, COMPLETE, ERROR, INTERRUPTED, STREAMING, ChatStoreError,
                        NotFoundError, auto_title)
from chat.store import ChatStore
from common.task import Cancelled


class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(tmp_path, clock):
    s = ChatStore.open(tmp_path / "chats.sqlite3", clock=clock)
    yield s
    s.close()


def say(store, clock, conv, text, parent=None):
    clock.advance(1)
    return store.add_user_message(conv, text, parent)


def answer(store, clock, conv, text, parent=None):
    clock.advance(1)
    w = store.start_reply(conv, parent, model="m", params={"temperature": 0.5}, clock=clock)
    w.append(text)
    w.finish(stats={"tokens_per_s": 40.0}, token_count=3)
    return w.message_id


def contents(path):
    return [m.content for m in path]


def test_default_location_is_the_data_folder(llamadesk_home):
    with ChatStore.open() as s:
        assert s.path == llamadesk_home / "data" / "chats.sqlite3"
        assert s._rows("PRAGMA journal_mode")[0][0] == "wal"
        assert s._rows("PRAGMA foreign_keys")[0][0] == 1


def test_edit_makes_a_branch_and_switching_restores_each_path(store, clock):
    conv = store.create()
    q1 = say(store, clock, conv, "What is a llama?")
    a1 = answer(store, clock, conv, "A camelid.")
    q2 = say(store, clock, conv, "How tall?")
    a2 = answer(store, clock, conv, "About 1.8 m.")
    assert contents(store.active_path(conv)) == ["What is a llama?", "A camelid.", "How tall?",
                                                 "About 1.8 m."]

    clock.advance(1)
    q2b = store.edit_user_message(q2, "How heavy?")
    a2b = answer(store, clock, conv, "Up to 200 kg.")
    assert contents(store.active_path(conv)) == ["What is a llama?", "A camelid.", "How heavy?",
                                                 "Up to 200 kg."]
    sibs, index = store.siblings(q2b)
    assert [m.id for m in sibs] == [q2, q2b] and index == 1
    assert store.get_message(q2b).parent_id == a1

    path = store.switch_to(q2)          # `< 1/2`: back to the first question, its answer
    assert [m.id for m in path] == [q1, a1, q2, a2]
    assert store.get(conv).active_leaf_id == a2
    assert [m.id for m in store.switch_to(q2b)] == [q1, a1, q2b, a2b]
    assert store.siblings(q1) == ([store.get_message(q1)], 0)
    assert [m.id for m in store.children(a1)] == [q2, q2b]


def test_editing_the_first_message_branches_at_the_root(store, clock):
    conv = store.create()
    q1 = say(store, clock, conv, "first")
    answer(store, clock, conv, "reply")
    clock.advance(1)
    q1b = store.edit_user_message(q1, "first, reworded")
    assert store.get_message(q1b).parent_id is None
    assert store.siblings(q1b)[1] == 1
    assert contents(store.active_path(conv)) == ["first, reworded"]
    assert store.get(conv).title == "first"      # the title stays put


def test_regenerate_adds_alternative_replies(store, clock):
    conv = store.create(model="llama-3-8b")
    q = say(store, clock, conv, "Name a colour")
    a1 = answer(store, clock, conv, "Blue")
    clock.advance(1)
    a2 = store.regenerate(a1)
    msg = store.get_message(a2)
    assert (msg.parent_id, msg.state, msg.model, msg.params) == (q, STREAMING, "m", {"temperature": 0.5})
    w = store.reply_writer(a2, clock=clock)
    w.append("Green")
    w.finish(COMPLETE)
    clock.advance(1)
    a3 = store.regenerate(a2, model="other", params={"temperature": 1.2})
    store.reply_writer(a3, clock=clock).finish(CANCELLED)
    sibs, index = store.siblings(a2)
    assert [m.id for m in sibs] == [a1, a2, a3] and index == 1
    assert store.get_message(a3).model == "other"
    assert contents(store.active_path(conv)) == ["Name a colour", ""]
    assert contents(store.switch_to(a2)) == ["Name a colour", "Green"]
    with pytest.raises(ChatStoreError):
        store.regenerate(q)
    with pytest.raises(ChatStoreError):
        store.edit_user_message(a1, "not a user message")


def test_switching_picks_the_most_recent_leaf_below(store, clock):
    conv = store.create()
    q = say(store, clock, conv, "q")
    a = answer(store, clock, conv, "a")
    f1 = say(store, clock, conv, "follow-up 1", a)
    f2 = say(store, clock, conv, "follow-up 2", a)
    store.switch_to(f1)
    assert [m.id for m in store.switch_to(q)] == [q, a, f2]


def test_writer_saves_at_least_once_a_second_and_on_finish(store, clock):
    conv = store.create()
    say(store, clock, conv, "count")
    w = store.start_reply(conv, clock=clock)
    saved = lambda: store.get_message(w.message_id).content  # noqa: E731
    w.append("one ")
    clock.advance(0.5)
    w.append("two ")
    assert saved() == "" and w.pending
    clock.advance(0.5)
    w.append("three ")                 # 1 s since the last save: commits
    assert saved() == "one two three " and w.saves == 1 and not w.pending
    clock.advance(0.9)
    w.append("four ")
    assert saved() == "one two three "
    assert not w.tick()
    clock.advance(0.1)
    assert w.tick() and saved() == "one two three four "   # a timer can flush a stall
    w.append("five")
    w.finish(COMPLETE, stats={"tokens_per_s": 12.5}, token_count=5)
    msg = store.get_message(w.message_id)
    assert (msg.content, msg.state, msg.stats, msg.token_count) == (
        "one two three four five", COMPLETE, {"tokens_per_s": 12.5}, 5)
    with pytest.raises(ChatStoreError):
        w.append("more")
    with pytest.raises(ChatStoreError):
        store.reply_writer(w.message_id)


def test_writer_as_context_manager_records_cancel_and_error(store, clock):
    conv = store.create()
    say(store, clock, conv, "go")
    with pytest.raises(Cancelled):
        with store.start_reply(conv, clock=clock) as w:
            w.append("partial")
            raise Cancelled()
    assert store.get_message(w.message_id).state == CANCELLED
    assert store.get_message(w.message_id).content == "partial"
    with pytest.raises(RuntimeError):
        with store.reply_writer(store.regenerate(w.message_id)) as w2:
            raise RuntimeError("out of memory")
    msg = store.get_message(w2.message_id)
    assert msg.state == ERROR and "out of memory" in msg.stats["error"]


def test_a_reply_left_streaming_reopens_interrupted_and_can_be_continued(tmp_path, clock):
    db = tmp_path / "chats.sqlite3"
    store = ChatStore.open(db, clock=clock)
    conv = store.create()
    q = store.add_user_message(conv, "Write a poem")
    w = store.start_reply(conv, clock=clock)
    w.append("Roses are red,")
    clock.advance(1)
    w.append(" violets")
    store.close()                       # as if the process died: never finished

    store = ChatStore.open(db, clock=clock)
    assert store.recovered == [w.message_id]
    msg = store.get_message(w.message_id)
    assert (msg.state, msg.content, msg.parent_id) == (INTERRUPTED, "Roses are red, violets", q)
    w2 = store.continue_reply(w.message_id, clock=clock)
    assert w2.text == "Roses are red, violets"
    assert store.get_message(w.message_id).state == STREAMING
    w2.append(" are blue.")
    w2.finish(COMPLETE)
    assert contents(store.active_path(conv)) == ["Write a poem", "Roses are red, violets are blue."]
    with pytest.raises(ChatStoreError):
        store.continue_reply(w.message_id)      # complete now
    store.close()
    with ChatStore.open(db) as again:
        assert again.recovered == []


def test_conversation_list_order_pin_archive_and_trash(store, clock):
    a = store.create(title="Alpha")
    clock.advance(1)
    b = store.create()
    clock.advance(1)
    c = store.create(title="Gamma", system_prompt="Be brief.", model="llama")
    assert [x.id for x in store.list()] == [c, b, a]
    say(store, clock, a, "  \n  Bump   alpha to the top, please, with a long long long long line\n")
    assert [x.id for x in store.list()] == [a, c, b]
    store.set_pinned(b)
    assert [x.id for x in store.list()] == [b, a, c]
    store.set_archived(c)
    assert [x.id for x in store.list()] == [b, a]
    assert [x.id for x in store.list(include_archived=True)] == [b, a, c]
    assert store.get(b).display_title == "New chat"
    say(store, clock, b, "What's the capital of Peru?")
    assert store.get(b).title == "What's the capital of Peru?" and store.get(b).title_is_auto
    store.rename(b, "Geography")
    assert (store.get(b).title, store.get(b).title_is_auto) == ("Geography", False)
    store.set_system_prompt(a, "You are a pirate.")
    store.set_model(a, "llama-3.2-1b")
    got = store.get(a)
    assert (got.system_prompt, got.model, got.message_count) == ("You are a pirate.", "llama-3.2-1b", 1)

    store.delete(a)
    assert a not in [x.id for x in store.list(include_archived=True)]
    assert [x.id for x in store.list(trash=True)] == [a] and store.get(a).in_trash
    store.restore(a)
    assert store.list(trash=True) == []
    store.delete(a)
    store.delete(c)
    assert store.empty_trash() == 2
    with pytest.raises(NotFoundError):
        store.get(a)
    assert store._rows("SELECT count(*) FROM messages")[0][0] == 1
    store.purge(b)
    assert store.list(include_archived=True) == []
    assert store._rows("SELECT count(*) FROM messages_fts")[0][0] == 0


def test_auto_title():
    assert auto_title("\n\n  Hello   world \nsecond line") == "Hello world"
    long = auto_title("x" * 200)
    assert len(long) == 60 and long.endswith("…")


def test_messages_must_belong_to_their_conversation(store, clock):
    a, b = store.create(), store.create()
    qa = say(store, clock, a, "in a")
    with pytest.raises(NotFoundError):
        store.add_user_message(b, "bad parent", qa)
    with pytest.raises(NotFoundError):
        store.begin_reply(b, qa)
    with pytest.raises(NotFoundError):
        store.get_message(9999)


def test_a_worker_thread_streams_while_the_caller_reads(store):
    conv = store.create()
    q = store.add_user_message(conv, "stream please")
    reply = store.begin_reply(conv, q)
    progress = threading.Semaphore(0)
    errors = []

    def worker():
        try:
            w = store.reply_writer(reply, save_interval=0)     # save on every piece
            for i in range(50):
                w.append(f"{i} ")
                progress.release()
            w.finish(COMPLETE)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        progress.release()

    t = threading.Thread(target=worker)
    t.start()
    lengths = []
    for _ in range(51):
        progress.acquire()
        lengths.append(len(store.get_message(reply).content))
    t.join()
    assert not errors and lengths == sorted(lengths) and lengths[-1] > 0
    assert store.get_message(reply).state == COMPLETE
