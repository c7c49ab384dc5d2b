"""Full-text search across conversations (FTS5)."""
from __future__ import annotations

import pytest

from chat.store import ChatStore, fts_query


@pytest.fixture
def store(tmp_path):
    s = ChatStore.open(tmp_path / "chats.sqlite3")
    yield s
    s.close()


def chat(store, title, *turns):
    conv = store.create(title=title)
    for user, reply in turns:
        store.add_user_message(conv, user)
        w = store.start_reply(conv)
        w.append(reply)
        w.finish()
    return conv


def test_finds_words_in_old_messages_across_conversations(store):
    trip = chat(store, "Trip", ("Plan a trip to Cusco", "Acclimatise before Machu Picchu."),
                ("What about food?", "Try the quinoa soup."))
    code = chat(store, "Code", ("Explain Python decorators", "A decorator wraps a function."))
    for i in range(30):                     # plenty of newer, unrelated chatter
        chat(store, f"Filler {i}", (f"filler question {i}", f"filler answer {i}"))
    llama = chat(store, "Llamas", ("Are llamas from Peru?", "Yes, and they like quinoa fields."))

    hits = store.search("quinoa")
    assert {(h.conversation_id, h.conversation_title) for h in hits} == {(trip, "Trip"),
                                                                        (llama, "Llamas")}
    assert all("[quinoa]" in h.snippet for h in hits)
    assert [h.conversation_id for h in store.search("decorator wraps")] == [code]
    assert [h.role for h in store.search("Cusco")] == ["user"]
    assert store.search("deco")[0].conversation_id == code      # the last word is a prefix
    assert store.search("quinoa", limit=1)[0].conversation_id in (trip, llama)
    hit = store.search("Machu")[0]
    assert store.get_message(hit.message_id).content == "Acclimatise before Machu Picchu."


def test_ignores_case_and_accents_and_is_safe_with_any_input(store):
    conv = chat(store, "Accents", ("Crème brûlée recipe?", "Caramelise the sugar: NOT optional."))
    assert [h.conversation_id for h in store.search("creme BRULEE")] == [conv]
    for query in ('NOT', '"unbalanced', "a OR", "-x", "(", "*", "col:umn", "NEAR(a b)"):
        store.search(query)                      # never an FTS syntax error
    assert store.search("   ") == [] and store.search("!?") == []
    assert fts_query('say "hi" NOT') == '"say" "hi" "NOT"*'


def test_trash_is_not_searched_and_streamed_text_is(store):
    conv = chat(store, "Secret", ("the password is swordfish", "noted"))
    store.delete(conv)
    assert store.search("swordfish") == []
    store.restore(conv)
    assert len(store.search("swordfish")) == 1
    other = store.create()
    store.add_user_message(other, "stream")
    w = store.start_reply(other, save_interval=0)
    w.append("halfway through a haiku")        # saved, still streaming
    assert [h.message_id for h in store.search("haiku")] == [w.message_id]
    w.finish()
