"""Hostile chat templates are refused before they allocate, under a real memory cap.

Each check runs in a child process whose address space is capped with
``resource.setrlimit(RLIMIT_AS)`` at what it uses after its imports plus 512 MB.
Every hostile template would need more than that (most need gigabytes), so a
renderer that allocated first and refused afterwards would hit MemoryError there.
A control renders one of them with jinja's own sandbox to show that the cap bites.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.hostile_templates import HOSTILE

ROOT = Path(__file__).resolve().parents[1]
EXTRA_MB = 512
linux_only = pytest.mark.skipif(not Path("/proc/self/statm").exists() or os.name != "posix",
                                reason="RLIMIT_AS and /proc are Linux's")


@pytest.fixture(scope="module")
def capped_results():
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "tests.fixtures.hostile_templates", str(EXTRA_MB)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    return {d["name"]: d for d in map(json.loads, proc.stdout.splitlines())}


@linux_only
def test_the_memory_cap_bites_a_renderer_that_allocates_first(capped_results):
    assert capped_results["cap"]["extra_mb"] == EXTRA_MB
    assert capped_results["control"]["memory_error"] is True


@linux_only
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_template_is_refused_under_a_memory_cap(capped_results, name):
    result = capped_results[name]
    assert result["refused"], f"{name}: rendered {result['chars']} characters instead of refusing"
    assert not result["memory_error"], f"{name}: allocated before refusing ({result['reason']})"
    assert result["reason"].startswith("the chat template"), result["reason"]


@linux_only
def test_random_hostile_templates_refused_or_bounded_under_a_memory_cap():
    """Hypothesis builds templates from hostile pieces; a child under the cap renders them."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1",
               LLAMADESK_CAPPED_CHILD=str(EXTRA_MB))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:randomly", f"{__file__}::test_capped_child_property"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout


@pytest.mark.skipif(not os.environ.get("LLAMADESK_CAPPED_CHILD"), reason="runs in the capped child")
def test_capped_child_property():
    from hypothesis import given

    from common.jinja_sandbox import DEFAULT_LIMITS, MiB
    from tests.fixtures.hostile_templates import cap_memory, hostile_template_strategy, render_one

    render_one("{{ 'warm up' }}")
    cap_memory(int(os.environ["LLAMADESK_CAPPED_CHILD"]))
    value_limit = DEFAULT_LIMITS.value_bytes + 64 * 1024   # plus the (tiny) input's share

    @given(hostile_template_strategy())
    def check(source):
        result = render_one(source)
        assert not result["memory_error"], f"allocated before refusing: {source!r}"
        if not result["refused"]:
            assert result["chars"] <= value_limit
        else:
            assert result["reason"].startswith("the chat template"), result["reason"]

    check()
    assert MiB  # the limits module was used under the cap


def _stored_bytes(text: str) -> int:
    """Bytes CPython stores for ``text``: 1, 2 or 4 per character by the widest one."""
    widest = max(map(ord, text), default=0)
    return len(text) * (1 if widest < 256 else 2 if widest < 65536 else 4)


def _values():
    from hypothesis import strategies as st

    leaves = st.one_of(st.text(max_size=40), st.integers(), st.floats(), st.booleans(), st.none(),
                       st.binary(max_size=20))
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.tuples(inner, inner), st.frozensets(st.integers(), max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=30)


def test_printed_size_estimate_is_an_upper_bound():
    """Every size check rests on this estimate: it may be too big, never too small."""
    from hypothesis import given

    from common.jinja_sandbox import printed_bytes

    @given(_values())
    def check(value):
        text = str(value)
        assert printed_bytes(value, 1 << 40) >= _stored_bytes(text)

    check()
