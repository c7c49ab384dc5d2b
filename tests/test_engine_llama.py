"""The llama.cpp backend on the real SmolLM2 model: streaming, stopping, cancelling, seeds."""
from __future__ import annotations


from common.task import TaskHandle
from engine.text_stream import StopStringFilter, Utf8Stream
from engine.types import ChatMessage, GenerationParams

GREEDY = GenerationParams(max_tokens=64, temperature=0, seed=1)
ASK = [ChatMessage("system", "You are a helpful assistant."),
       ChatMessage("user", "Name three colours.")]


def test_streams_in_many_pieces_and_stops_at_end_of_generation(smollm2):
    pieces = list(smollm2.stream_chat(ASK, GREEDY))
    stats = smollm2.last_stats
    assert len(pieces) >= 5 and all(pieces)
    assert stats.stop_reason == "eog"
    assert stats.gen_tokens < GREEDY.max_tokens
    assert stats.ttft_s is not None and stats.gen_tps > 0 and stats.prompt_tps > 0
    assert stats.ctx_used == len(smollm2.cache_tokens) and stats.n_ctx == 1024
    assert "<|im_end|>" not in "".join(pieces)


def test_cancel_takes_effect_within_one_token(smollm2):
    handle = TaskHandle()
    seen = []
    for piece in smollm2.stream_chat([ChatMessage("user", "Write a long story about a ship.")],
                                     GenerationParams(max_tokens=200, temperature=0), handle):
        seen.append(piece)
        if len(seen) == 3:
            handle.cancel()
    assert len(seen) == 3
    assert smollm2.last_stats.stop_reason == "cancelled"
    assert smollm2.last_stats.gen_tokens <= 4


def test_length_limit(smollm2):
    list(smollm2.stream_chat([ChatMessage("user", "Write a long story about a ship.")],
                             GenerationParams(max_tokens=7, temperature=0)))
    assert smollm2.last_stats.stop_reason == "length"
    assert smollm2.last_stats.gen_tokens == 7


def test_stop_string_ends_the_reply_before_it(smollm2):
    full = "".join(smollm2.stream_chat(ASK, GREEDY))
    words = [w.strip(".,:;!*") for w in full.split() if len(w.strip(".,:;!*")) > 3]
    stop = words[len(words) // 2]
    cut = "".join(smollm2.stream_chat(ASK, GenerationParams(**{**GREEDY.__dict__, "stop": (stop,)})))
    assert smollm2.last_stats.stop_reason == "stop_string"
    assert cut == full[:full.index(stop)]


def test_fixed_seed_reproduces_sampling(smollm2):
    params = GenerationParams(max_tokens=40, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=1234)
    prompt = [ChatMessage("user", "Invent a name for a cat.")]
    first = "".join(smollm2.stream_chat(prompt, params))
    again = "".join(smollm2.stream_chat(prompt, params))
    other = "".join(smollm2.stream_chat(prompt, GenerationParams(**{**params.__dict__, "seed": 99})))
    assert first == again
    assert first != other


def test_unchanged_history_costs_only_the_new_tokens(smollm2):
    convo = list(ASK)
    reply = "".join(smollm2.stream_chat(convo, GREEDY))
    convo += [ChatMessage("assistant", reply), ChatMessage("user", "And three animals?")]
    new_text_tokens = smollm2.count_tokens("And three animals?")
    list(smollm2.stream_chat(convo, GREEDY))
    stats = smollm2.last_stats
    assert stats.prompt_evaluated <= new_text_tokens + 12  # the message plus its template tokens
    assert stats.prompt_tokens > 3 * stats.prompt_evaluated


def test_utf8_split_across_tokens_is_reassembled_exactly(smollm2):
    text = "日本語のテキスト 🦙🎉 naïve café Ελληνικά"
    rt = smollm2._rt
    tokens = rt.tokenize(text)
    raw = [rt.piece(t) for t in tokens]
    assert any(_splits_a_character(p) for p in raw), "expected some token to end mid-character"
    stream = Utf8Stream()
    out = [stream.feed(p) for p in raw] + [stream.flush()]
    assert "".join(out) == text
    assert all("\ufffd" not in piece for piece in out)


def _splits_a_character(piece: bytes) -> bool:
    try:
        piece.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def test_stop_filter_holds_back_partial_stop_strings():
    f = StopStringFilter(["</answer>"])
    assert f.feed("The answer is 4</an") == "The answer is 4"
    assert f.feed("swer> and more") == ""
    assert f.stopped
    g = StopStringFilter(["</answer>"])
    assert g.feed("a </a") == "a "
    assert g.feed("b") == "</ab"
    assert g.flush() == ""
