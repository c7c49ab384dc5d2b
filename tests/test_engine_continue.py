"""Continuing a reply cut short, on the real SmolLM2 model: it resumes at the exact token
where it stopped, and says which length limit cut it."""
from __future__ import annotations

import pytest

from common.task import TaskHandle
from engine.backend import ReplyTooLongError
from engine.llama_backend import LlamaCppBackend
from engine.types import ChatMessage, GenerationParams, length_note

STORY = [ChatMessage("system", "You are a helpful assistant."),
         ChatMessage("user", "Write a long story about a girl named Lila who sews a cloth on a boat.")]


def greedy(max_tokens: int) -> GenerationParams:
    return GenerationParams(max_tokens=max_tokens, temperature=0, seed=1)


@pytest.mark.parametrize("cut", [5, 13, 21])
def test_continuing_a_cut_reply_gives_the_same_text_as_one_long_reply(smollm2, cut):
    whole = "".join(smollm2.stream_chat(STORY, greedy(40)))
    assert smollm2.last_stats.stop_reason == "length"
    head = "".join(smollm2.stream_chat(STORY, greedy(cut)))
    stats = smollm2.last_stats
    assert (stats.stop_reason, stats.limited_by, stats.length_limit) == ("length", "max_tokens", cut)
    assert whole.startswith(head) and len(head) < len(whole)
    tail = "".join(smollm2.stream_chat(STORY + [ChatMessage("assistant", head)], greedy(40 - cut)))
    # nothing lost, nothing added where the two parts meet (no "cloth onLila's")
    assert head + tail == whole


def test_continuing_resumes_from_the_cached_tokens_of_the_cut_reply(smollm2):
    head = "".join(smollm2.stream_chat(STORY, greedy(12)))
    cached = smollm2.cache_tokens
    prompt = smollm2.prompt_tokens(STORY + [ChatMessage("assistant", head)])
    # the prompt is the cache plus the one token sampled last (never decoded), not a new turn
    assert prompt[:len(cached)] == cached and len(prompt) == len(cached) + 1
    list(smollm2.stream_chat(STORY + [ChatMessage("assistant", head)], greedy(4)))
    assert smollm2.last_stats.prompt_evaluated == 1


def test_a_reply_edited_or_from_elsewhere_is_continued_from_its_text(smollm2):
    """Text that is not in the cache (another model's, or a cancelled reply loaded from
    disk) is tokenized as plain text after the opened assistant turn."""
    smollm2.reset_cache()
    partial = "Once upon a time, Lila"
    tail = "".join(smollm2.stream_chat(STORY + [ChatMessage("assistant", partial)], greedy(6)))
    assert tail and not tail.startswith(("<|", "\n"))
    rendered = smollm2.template.render(STORY, add_generation_prompt=True)
    prompt = smollm2.prompt_tokens(STORY + [ChatMessage("assistant", partial)])
    text = "".join(smollm2._rt.piece(t, special=True).decode() for t in prompt)
    assert text.endswith(rendered.split("<|im_start|>")[-1] + partial)


def test_a_reply_that_fills_the_window_says_so(smollm2_path):
    backend = LlamaCppBackend(smollm2_path, n_ctx=256, n_threads=1)
    backend.load()
    try:
        reply = "".join(backend.stream_chat(STORY, greedy(1000), TaskHandle()))
        stats = backend.last_stats
        assert (stats.stop_reason, stats.limited_by) == ("length", "context")
        assert stats.length_limit == 256 - stats.prompt_tokens == stats.gen_tokens
        # with no older turn to let go, there is no room to continue: said as such
        with pytest.raises(ReplyTooLongError, match="no room to continue it"):
            list(backend.stream_chat(STORY + [ChatMessage("assistant", reply)], greedy(1000)))
    finally:
        backend.unload()
    assert length_note("context", 200) == "Reply filled the model's context window."
    assert length_note("max_tokens", 1024) == "Reply reached the length limit (1,024 tokens)."


def test_the_cli_says_when_a_reply_hit_the_length_limit(smollm2_path):
    import subprocess
    import sys
    from pathlib import Path

    r = subprocess.run([sys.executable, "main.py", "chat", "--model", str(smollm2_path), "--prompt", STORY[1].content,
                        "--max-tokens", "9", "--temperature", "0", "--threads", "1", "--n-ctx", "512"],
                       cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "[Reply reached the length limit (9 tokens). --max-tokens allows more.]" in r.stderr
