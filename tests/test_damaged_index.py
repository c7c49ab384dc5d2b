"""A damaged index page must not make a conversation impossible to show: every message of
every conversation still knows its place among its alternatives (the window opens the last
conversation at launch, which may be any of them)."""
from __future__ import annotations

from chat.records import ChatStoreError
from chat.store import ChatStore
from common.paths import data_paths
from tests.test_gui_startup import damaged_database


def test_every_message_of_a_damaged_database_has_its_siblings():
    damaged_database()
    with ChatStore.open(data_paths().chats_db, read_only=True) as store:
        convs = store.list()
        assert len(convs) == 30
        for conv in convs:
            try:
                path = store.active_path(conv.id)
            except ChatStoreError:
                continue                   # a part that cannot be read says so (the window shows it)
            for msg in path:
                try:
                    siblings, index = store.siblings(msg.id)
                except ChatStoreError:
                    continue
                assert siblings[index].id == msg.id
