"""Which cached tokens a new prompt can reuse, so kept history is never re-read.

The KV cache holds ``cached`` (positions 0..n-1). A new prompt usually equals the
cache plus new tokens; after the oldest turns were dropped it equals
``cached[:a] + cached[b:b+k] + new``: the system prompt, then the kept history that
used to sit further along. The plan removes ``cached[a:b]``, shifts the kept run
left by ``b - a`` (llama.cpp re-applies RoPE), drops any stale tail, and leaves only
``prompt[a+k:]`` to evaluate.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

PROBE = 16           # tokens of the prompt looked up in the cache to find the kept run
MIN_SHIFT_RUN = 32   # shorter runs are cheaper to re-evaluate than to shift


@dataclass(frozen=True)
class ReusePlan:
    prefix: int        # cached[:prefix] stays where it is
    remove_to: int     # cached[prefix:remove_to] is removed
    shifted: int       # cached[remove_to:remove_to+shifted] moves left by remove_to-prefix

    @property
    def reused(self) -> int:
        return self.prefix + self.shifted

    @property
    def removed(self) -> int:
        return self.remove_to - self.prefix


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if len(diff) else n


def plan_reuse(cached: Sequence[int], prompt: Sequence[int], *, can_shift: bool = True) -> ReusePlan:
    c = np.asarray(cached, dtype=np.int32)
    p = np.asarray(prompt, dtype=np.int32)
    a = common_prefix(c, p)
    best = ReusePlan(a, a, 0)
    rest = p[a:]
    if can_shift and len(rest) >= MIN_SHIFT_RUN and len(c) - a > MIN_SHIFT_RUN:
        probe = rest[:PROBE].tobytes()
        hay = c.tobytes()
        start = (a + 1) * 4
        for _ in range(8):  # a few candidate positions suffice; the first usually wins
            pos = hay.find(probe, start)
            if pos < 0:
                break
            if pos % 4:
                start = pos + 1
                continue
            b = pos // 4
            k = common_prefix(c[b:], rest)
            if k >= MIN_SHIFT_RUN and k > best.shifted:
                best = ReusePlan(a, b, k)
            start = pos + 4
    # At least one prompt token must be evaluated to get logits for the next token.
    if best.reused >= len(p):
        if best.shifted:
            best = ReusePlan(best.prefix, best.remove_to, best.shifted - 1)
        else:
            best = ReusePlan(len(p) - 1, len(p) - 1, 0)
    return best
