"""The context window: exact fitting by whole turns, and a long chat that never re-reads."""
from __future__ import annotations

import pytest

from engine.backend import MessageTooLongError
from engine.context_window import fit_history, split_turns
from engine.kv_reuse import plan_reuse
from engine.llama_backend import LlamaCppBackend
from engine.types import ChatMessage, GenerationParams

M = ChatMessage


@pytest.fixture(scope="module")
def small_window(smollm2_path):
    backend = LlamaCppBackend(smollm2_path, n_ctx=512, n_threads=1)
    backend.load()
    yield backend
    backend.unload()


def _convo(turns: int) -> list[ChatMessage]:
    msgs = [M("system", "You are terse.")]
    for i in range(turns):
        msgs += [M("user", f"Question number {i}: what is {i} plus {i}? " * 3),
                 M("assistant", f"The answer to question {i} is {2 * i}. " * 3)]
    return msgs + [M("user", "Last question: what is one plus one?")]


def test_split_turns_groups_user_and_replies():
    msgs = [M("system", "s"), M("assistant", "hello"), M("user", "a"), M("assistant", "b"),
            M("assistant", "b2"), M("user", "c"), M("assistant", "d"), M("user", "latest")]
    system, turns, tail = split_turns(msgs)
    assert system == [0] and turns == [[1], [2, 3, 4], [5, 6]] and tail == [7]


def test_fitter_keeps_system_and_latest_and_drops_oldest_whole_turns(small_window):
    msgs = _convo(20)
    fit = small_window.fit_history(msgs, GenerationParams(max_tokens=64))
    assert fit.kept[0] == 0 and fit.kept[-1] == len(msgs) - 1
    assert fit.dropped == tuple(range(1, 1 + len(fit.dropped)))   # the oldest, contiguous
    assert len(fit.dropped) % 2 == 0                               # whole turns only
    assert fit.prompt_tokens == len(small_window.prompt_tokens(fit.messages))
    assert fit.prompt_tokens + fit.reserve <= 512
    # One more turn would not have fitted: the fitter drops no more than it must.
    one_more = [msgs[i] for i in sorted(set(fit.kept) | {fit.dropped[-2], fit.dropped[-1]})]
    assert len(small_window.prompt_tokens(one_more)) + fit.reserve > 512


def test_fitter_keeps_everything_that_fits(small_window):
    msgs = _convo(2)
    fit = small_window.fit_history(msgs, GenerationParams(max_tokens=64))
    assert fit.dropped == () and fit.messages == tuple(msgs)


def test_a_single_message_too_large_for_the_window_is_a_clear_error(small_window):
    msgs = [M("system", "Be brief."), M("user", "word " * 2000)]
    with pytest.raises(MessageTooLongError, match="too long for the context window"):
        list(small_window.stream_chat(msgs, GenerationParams(max_tokens=16)))
    # The engine is still usable afterwards.
    assert "".join(small_window.stream_chat([M("user", "Hi")], GenerationParams(max_tokens=8, temperature=0)))


def test_fitter_arithmetic_without_a_model():
    msgs = [M("system", "s")] + [M("user" if i % 2 == 0 else "assistant", "x" * 10) for i in range(9)]
    count = lambda ms: sum(len(m.content) + 2 for m in ms)  # noqa: E731
    fit = fit_history(msgs, n_ctx=60, reserve=10, count_prompt=count, count_text=len)
    assert count(fit.messages) <= 50 and fit.kept[0] == 0 and fit.kept[-1] == 9
    with pytest.raises(MessageTooLongError):
        fit_history([M("system", "s" * 100), M("user", "u")], n_ctx=60, reserve=10, count_prompt=count)


def test_reuse_plan_finds_the_kept_run_after_dropped_turns():
    system, dropped, kept, new = list(range(10)), list(range(100, 150)), list(range(200, 300)), [7, 8, 9]
    plan = plan_reuse(system + dropped + kept, system + kept + new)
    assert (plan.prefix, plan.remove_to, plan.shifted) == (10, 60, 100)
    assert plan_reuse([1, 2, 3], [1, 2, 3]).reused == 2  # the last token is re-evaluated for logits
    assert plan_reuse(system + dropped, system + dropped + new).reused == 60


def test_forty_turns_past_the_window_never_re_evaluate_kept_history(smollm2_path, capsys):
    # A small window and replies of a few tokens: the window overflows again and again.
    backend = LlamaCppBackend(smollm2_path, n_ctx=256, n_threads=1)
    backend.load()
    try:
        msgs = [M("system", "You are a helpful assistant.")]
        params = GenerationParams(max_tokens=4, temperature=0)
        rows = []
        for i in range(40):
            user = f"Question {i}: one short fact about the number {i}, please."
            msgs.append(M("user", user))
            reply = "".join(backend.stream_chat(msgs, params))
            msgs.append(M("assistant", reply))
            s = backend.last_stats
            rows.append((s.prompt_tokens, s.prompt_evaluated, s.gen_tokens, len(s.dropped)))
            # Only the new message (with its template tokens) and the previous reply's
            # re-tokenized tail are evaluated, never the kept history.
            if i:
                assert s.prompt_evaluated <= backend.count_tokens(user) + 16
            assert s.stop_reason in ("eog", "length")
        assert backend.shift_count >= 10 and rows[-1][3] > 0
        total_prompt = sum(r[0] for r in rows)
        total_eval = sum(r[1] for r in rows)
        with capsys.disabled():
            print(f"\n40 turns, n_ctx 256: prompt tokens {total_prompt}, evaluated {total_eval} "
                  f"({total_eval / total_prompt:.1%}); all evaluated incl. replies "
                  f"{backend.evaluated_tokens}; KV shifts {backend.shift_count}; "
                  f"messages out of the window at the end {rows[-1][3]}")
        assert total_eval < total_prompt / 5
    finally:
        backend.unload()
