"""`python main.py chat --continue [ID]`: a stored conversation goes on from the terminal,
its saved KV cache used when one fits."""
from __future__ import annotations

import json

import pytest

import main
from chat.store import ChatStore
from engine import snapshots


@pytest.fixture
def model(tiny_gguf_factory):
    return tiny_gguf_factory("plain", "f16")


@pytest.fixture
def stored(llamadesk_home):
    with ChatStore.open() as store:
        old = store.create(title="Older chat")
        store.add_user_message(old, "An older question.")
        conv = store.create(title="Lighthouses")
        store.add_user_message(conv, "Tell me about lighthouses and the people who kept them. " * 3)
        w = store.start_reply(conv)
        w.append("Lighthouses guide ships along dangerous coasts at night. " * 4)
        w.finish()
        return conv


def chat(capsys, *args) -> tuple[int, dict, str]:
    rc = main.main(["chat", *args, "--stats", "json", "--max-tokens", "4", "--temperature", "0"])
    out = capsys.readouterr()
    lines = [ln for ln in out.err.splitlines() if ln.startswith("{")]
    return rc, (json.loads(lines[-1]) if lines else {}), out.err


def test_continue_saves_the_turns_and_reuses_the_snapshot(stored, model, capsys):
    rc, stats, err = chat(capsys, "--continue", "--model", str(model), "--n-ctx", "512", "--prompt", "Who kept them?")
    assert rc == 0, err
    assert "continuing conversation" in err and "Lighthouses" in err      # the most recent one
    assert stats["snapshot_used"] is False and stats["prompt_evaluated"] == stats["prompt_tokens"]
    assert len(snapshots.snapshot_files()) == 1
    with ChatStore.open(read_only=True) as store:
        path = store.active_path(stored)
        assert [m.role for m in path] == ["user", "assistant", "user", "assistant"]
        assert path[2].content == "Who kept them?" and path[3].state == "complete"

    rc, stats, err = chat(capsys, "--continue", str(stored), "--model", str(model), "--n-ctx", "512",
                          "--prompt", "And today?")
    assert rc == 0, err
    assert stats["snapshot_used"] is True
    assert stats["snapshot"]["tokens"] > stats["prompt_tokens"] // 2
    assert stats["prompt_evaluated"] == stats["prompt_tokens"] - stats["snapshot"]["tokens"]
    assert stats["prompt_evaluated"] < stats["prompt_tokens"] // 3
    with ChatStore.open(read_only=True) as store:
        assert len(store.active_path(stored)) == 6


def test_continue_says_why_it_cannot(stored, model, capsys):
    with ChatStore.open():            # the window holds the chats
        rc, _stats, err = chat(capsys, "--continue", "--model", str(model), "--prompt", "Hi")
    assert rc == 1 and "open in the LlamaDesk window" in err and "Traceback" not in err
    rc, _stats, err = chat(capsys, "--continue", "999", "--model", str(model), "--prompt", "Hi")
    assert rc == 1 and "no conversation with id 999" in err
    rc, _stats, err = chat(capsys, "--continue", "abc", "--model", str(model), "--prompt", "Hi")
    assert rc == 1 and "not a conversation id" in err
    rc, _stats, err = chat(capsys, "--prompt", "Hi")
    assert rc == 2 and "--model is required" in err


def test_a_conversation_deleted_for_good_from_the_terminal_loses_its_snapshot(stored, model, capsys):
    rc, stats, err = chat(capsys, "--continue", str(stored), "--model", str(model), "--n-ctx", "512",
                          "--prompt", "Who kept them?")
    assert rc == 0, err
    assert len(snapshots.snapshot_files()) == 1
    assert main.main(["chats", "delete", str(stored)]) == 0
    assert len(snapshots.snapshot_files()) == 1              # in the trash: it may come back
    assert main.main(["chats", "empty-trash", "--yes"]) == 0
    assert snapshots.snapshot_files() == []


def test_a_damaged_snapshot_is_reported_removed_and_the_history_read_again(stored, model, capsys):
    rc, _stats, err = chat(capsys, "--continue", "--model", str(model), "--n-ctx", "512", "--prompt", "Who?")
    assert rc == 0, err
    (path,) = snapshots.snapshot_files()
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x40                                   # one flipped bit in the state
    path.write_bytes(bytes(data))
    rc, stats, err = chat(capsys, "--continue", "--model", str(model), "--n-ctx", "512", "--prompt", "Why?")
    assert rc == 0, err
    assert "could not be used (damaged state (checksum differs))" in err and "Traceback" not in err
    assert stats["snapshot_used"] is False and stats["prompt_evaluated"] == stats["prompt_tokens"]
    assert not path.exists()
    assert len(snapshots.snapshot_files()) == 1          # the new turn's own
