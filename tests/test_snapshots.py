"""Saved KV caches of conversations (engine.snapshots): restored exactly, or not at all."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.task import TaskHandle
from engine import snapshots as S
from engine.llama_backend import LlamaCppBackend
from engine.types import ChatMessage, GenerationParams

M = ChatMessage
PARAMS = GenerationParams(max_tokens=8, temperature=0)
SYSTEM = M("system", "You are a helpful assistant.")
ROOT = Path(__file__).resolve().parents[1]


def chat_a(extra: str = "") -> list[ChatMessage]:
    msgs = [SYSTEM, M("user", "Tell me about lighthouses and the people who kept them. " * 3),
            M("assistant", "Lighthouses guide ships along dangerous coasts at night. " * 4)]
    return msgs + ([M("user", extra)] if extra else [])


def chat_b(extra: str = "") -> list[ChatMessage]:
    msgs = [SYSTEM, M("user", "Explain how bread rises, step by step, for a beginner baker. " * 3),
            M("assistant", "Yeast eats sugars and releases carbon dioxide into the dough. " * 4)]
    return msgs + ([M("user", extra)] if extra else [])


@pytest.fixture
def kv_root(tmp_path) -> Path:
    return tmp_path / "kv"


@pytest.fixture
def model(tiny_gguf_factory) -> Path:
    """A tiny Llama 3 GGUF (real llama.cpp, random weights): fast enough to read histories
    many times over."""
    return tiny_gguf_factory("plain", "f16")


@pytest.fixture
def open_backend(model, kv_root):
    opened = []

    def make(n_ctx: int = 512, *, path=None, f32_cache: bool = False, snapshots: bool = True,
             **budget) -> LlamaCppBackend:
        b = LlamaCppBackend(path or model, n_ctx=n_ctx, n_threads=1, f32_cache=f32_cache)
        b.load()
        opened.append(b)
        if snapshots:
            b.enable_snapshots(kv_root, **budget)
        return b

    yield make
    for b in opened:
        b.unload()


def saved(b: LlamaCppBackend, conv: str, msgs) -> None:
    """Prefill ``msgs`` as conversation ``conv`` and save its snapshot (on disk when this returns)."""
    b.conversation = conv
    b.prefill(msgs, PARAMS)
    assert b.save_snapshot() is not None
    b.snapshots.flush()


def files(root: Path) -> list[Path]:
    return sorted(S.snapshot_files(root))


def full_read_logits(model, msgs, n_ctx: int = 512) -> np.ndarray:
    b = LlamaCppBackend(model, n_ctx=n_ctx, n_threads=1)
    b.load()
    try:
        b.prefill(msgs, PARAMS)
        return b.next_token_logits()
    finally:
        b.unload()


# --- exactness -------------------------------------------------------------------------
def test_restored_cache_gives_the_same_logits_as_before_saving(open_backend):
    live = open_backend()
    saved(live, "1", chat_a())
    n_saved = len(live.cache_tokens)
    before = live.evaluated_tokens
    live.prefill(chat_a("And who keeps them today?"), PARAMS)
    expected, live_evaluated = live.next_token_logits(), live.evaluated_tokens - before

    other = open_backend()
    other.conversation = "1"
    other.prefill(chat_a("And who keeps them today?"), PARAMS)
    assert other.last_restore is not None and other.last_restore.tokens == n_saved
    # Only the new message was evaluated, as in the live cache, and to the same logits, bit for bit.
    assert other.evaluated_tokens == live_evaluated < n_saved // 3
    assert other.cache_tokens == live.cache_tokens
    assert np.array_equal(other.next_token_logits(), expected)


def test_a_new_process_restores_the_snapshot(open_backend, kv_root, model):
    live = open_backend()
    saved(live, "7", chat_a())
    prompt_len = len(live.cache_tokens)
    live.prefill(chat_a("Why are they painted in stripes?"), PARAMS)
    np.save(kv_root.parent / "expected.npy", live.next_token_logits())
    script = f"""
import json, sys, numpy as np
sys.path.insert(0, {str(ROOT)!r})
from engine.llama_backend import LlamaCppBackend
from tests.test_snapshots import chat_a, PARAMS
b = LlamaCppBackend({str(model)!r}, n_ctx=512, n_threads=1)
b.load(); b.enable_snapshots({str(kv_root)!r}); b.conversation = "7"
b.prefill(chat_a("Why are they painted in stripes?"), PARAMS)
same = bool(np.array_equal(b.next_token_logits(), np.load({str(kv_root.parent / 'expected.npy')!r})))
print(json.dumps({{"restored": b.last_restore.tokens if b.last_restore else 0,
                  "evaluated": b.evaluated_tokens, "same": same}}))
b.unload()
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["restored"] == prompt_len
    assert report["evaluated"] < prompt_len // 3     # the new message only, not the history
    assert report["same"]


# --- snapshots that must not be used ---------------------------------------------------------
@pytest.mark.parametrize("other", ["n_ctx", "cache_type", "model_changed"])
def test_a_snapshot_of_another_setup_is_never_restored(open_backend, kv_root, model, tmp_path, other):
    copy = tmp_path / "model.gguf"
    shutil.copyfile(model, copy)
    model = copy
    saved(open_backend(path=model), "3", chat_a())
    assert len(files(kv_root)) == 1
    if other == "model_changed":
        os.utime(model, ns=(1_000_000_000, 1_000_000_000))     # the file changed since
        b = open_backend(path=model)
        assert files(kv_root) == []                            # invalidated when it was seen
    else:
        b = open_backend(n_ctx=1024, path=model) if other == "n_ctx" else open_backend(path=model, f32_cache=True)
        # Even a file copied into this setup's folder is refused by its header, and removed.
        b.snapshots.dir.mkdir(parents=True, exist_ok=True)
        stray = b.snapshots.dir / files(kv_root)[0].name
        shutil.copyfile(files(kv_root)[0], stray)
    b.conversation = "3"
    b.prefill(chat_a("More?"), PARAMS)
    assert b.last_restore is None
    assert b.evaluated_tokens == len(b.cache_tokens)            # the whole history was read
    if other != "model_changed":
        assert not stray.exists()
        assert b.snapshots.removed and "another model file" in b.snapshots.removed[0][1]


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    meta_end = S._PREFIX.size + S._PREFIX.unpack(bytes(data[:S._PREFIX.size]))[1]
    if how == "truncated":
        data = data[: len(data) * 2 // 3]
    elif how == "payload_bit":
        data[-1000] ^= 0x10
    elif how == "token_bit":
        data[meta_end + 8] ^= 0x01
    elif how == "header_bit":
        data[meta_end - 5] ^= 0x04
    elif how == "empty":
        data = bytearray()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "payload_bit", "token_bit", "header_bit", "empty"])
def test_a_damaged_snapshot_is_ignored_removed_and_the_history_read_again(open_backend, kv_root,
                                                                          model, how):
    saved(open_backend(), "5", chat_a())
    (path,) = files(kv_root)
    _damage(path, how)
    b = open_backend()
    b.conversation = "5"
    b.prefill(chat_a("And then?"), PARAMS)
    assert b.last_restore is None
    assert not path.exists()
    assert b.snapshots.removed and b.snapshots.removed[0][0] == path.name
    assert b.evaluated_tokens == len(b.cache_tokens)
    # never wrong logits: the same as a plain full read
    assert np.array_equal(b.next_token_logits(), full_read_logits(model, chat_a("And then?")))


# --- budget and deletion ---------------------------------------------------------------------
def test_least_recently_used_snapshots_go_first_and_deleting_a_chat_deletes_its_files(open_backend, kv_root):
    probe = open_backend(snapshots=False)
    probe.prefill(chat_a(), PARAMS)
    one = len(probe.runtime.seq_state(0)) + 4 * len(probe.cache_tokens) + 2048
    b = open_backend(disk_budget=int(2.5 * one), ram_budget=0)
    saved(b, "1", chat_a())
    saved(b, "2", chat_b())
    first, second = files(kv_root)
    os.utime(first, ns=(10**18, 10**18))       # "1" was used more recently than "2"
    saved(b, "3", chat_a("A third conversation that starts like the first one."))
    names = {p.name.split("-")[0] for p in files(kv_root)}
    assert names == {"1", "3"}, names                    # "2", least recently used, was evicted
    assert S.disk_usage(kv_root) <= int(2.5 * one)

    assert b.snapshots.forget(["3"]) == 1                # the conversation was deleted for good
    assert {p.name.split("-")[0] for p in files(kv_root)} == {"1"}
    assert S.keep_conversations(["9"], kv_root) == 1     # a sweep against the chats that exist
    assert files(kv_root) == []


# --- switching -----------------------------------------------------------------------------
def test_switching_between_two_chats_evaluates_only_the_new_tokens_from_ram(open_backend, kv_root):
    """A -> B -> A on one model costs what each chat costs when it has the model to itself."""
    b = open_backend(disk_budget=0)                        # nothing on disk: RAM alone
    alone = {"A": open_backend(snapshots=False), "B": open_backend(snapshots=False)}
    chats = {"A": chat_a("Short answer please."), "B": chat_b("Short answer please.")}
    for turn, conv in enumerate(["A", "B", "A", "B", "A"]):
        msgs = chats[conv]
        if turn >= 2:
            msgs.append(M("user", f"Thanks, one more thing ({turn})."))
        b.conversation = conv
        before = b.evaluated_tokens
        reply = "".join(b.stream_chat(msgs, PARAMS))
        own = "".join(alone[conv].stream_chat(msgs, PARAMS))
        assert reply == own
        evaluated = b.last_stats.prompt_evaluated
        if turn < 2:     # a chat's first turn: at most what it costs alone (a shared system prompt helps)
            assert evaluated <= alone[conv].last_stats.prompt_evaluated
        else:
            assert evaluated == alone[conv].last_stats.prompt_evaluated
            assert b.last_restore is not None and b.last_restore.source == "ram"
            assert evaluated < len(b.prompt_tokens(msgs)) // 3     # not the history again
        # the engine's own count: the prompt's new tokens and the reply's
        assert b.evaluated_tokens - before == evaluated + max(0, len(b.cache_tokens) - b.last_stats.prompt_tokens)
        msgs.append(M("assistant", reply))
        b.save_snapshot()
    assert files(kv_root) == []


def test_opening_a_conversation_restores_its_cache_before_the_next_message(open_backend):
    saved(open_backend(), "4", chat_a())
    b = open_backend()
    b.conversation = "4"
    info = b.restore_for(chat_a())
    assert info is not None and info.source == "disk" and info.tokens > 100
    assert b.evaluated_tokens == 0
    assert info.text().startswith(f"Restored {info.tokens:,} tokens in ")
    before = b.evaluated_tokens
    b.prefill(chat_a("Go on."), PARAMS)
    assert b.last_restore is None                       # nothing better than what came back
    assert b.evaluated_tokens - before < info.tokens // 3


# --- a shifted cache, partly rebuilt -----------------------------------------------------------
def test_a_snapshot_saved_during_the_idle_rebuild_comes_back_as_it_was(open_backend):
    system = SYSTEM
    old = [M("user", "Tell me about lighthouses. " * 8), M("assistant", "Lighthouses guide ships. " * 10)]
    kept = [M("user", "Summarise."), M("assistant", "Summary:" + "".join(f" point {i}," for i in range(60)))]
    live = open_backend(n_ctx=1024)
    live.conversation = "6"
    live.prefill([system, *old, *kept, M("user", "Thanks.")], PARAMS)
    after = [system, *kept, M("user", "What is the capital of France?")]
    live.prefill(after, PARAMS)
    assert not live.cache_exact
    step = TaskHandle(on_progress=lambda _r: step.cancel())       # one chunk, then a new request
    assert live.rebuild_cache(step, chunk=16) is False
    approx = live._approx_from
    assert approx is not None
    meta = live.save_snapshot()
    assert meta.approx_from == approx
    live.snapshots.flush()

    other = open_backend(n_ctx=1024)
    other.conversation = "6"
    assert other.restore_for(after) is not None
    assert other.cache_tokens == live.cache_tokens and not other.cache_exact
    assert other._approx_from == approx
    # Both finish the rebuild from where it stopped, to the same exact cache: the next
    # message gives the same logits, bit for bit. (Before the rebuild, a shifted cache's
    # logits depend on where its cells sit, so only the finished caches are compared.)
    assert live.rebuild_cache() and other.rebuild_cache()
    assert live.cache_exact and other.cache_exact
    follow = after + [M("assistant", "Paris."), M("user", "And of Spain?")]
    live.prefill(follow, PARAMS)
    other.prefill(follow, PARAMS)
    assert np.array_equal(other.next_token_logits(), live.next_token_logits())
