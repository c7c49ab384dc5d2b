"""Every part of a split GGUF set is validated before llama.cpp opens any of them.

A set whose second part has a hostile header is listed as unusable, naming the part
and the problem, in the library, in the `models` command and when the engine loads it.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from common.paths import data_paths
from engine.backend import EngineError
from models import library
from models.gguf_validate import UnsafeGGUFError, validate_gguf_set
from tests.fixtures.hub_server import write_llama3_gguf

ROOT = Path(__file__).resolve().parents[1]
PART1, PART2 = "Tiny-Q8_0-00001-of-00002.gguf", "Tiny-Q8_0-00002-of-00002.gguf"


def _tensor_name_bytes(data: bytes, name: bytes) -> int:
    """Offset of a tensor name's 8-byte length prefix in a GGUF header."""
    at = data.index(struct.pack("<Q", len(name)) + name)
    return at


def rename_tensor(data: bytes, old: bytes, new: bytes) -> bytes:
    at = _tensor_name_bytes(data, old)
    return data[:at] + struct.pack("<Q", len(new)) + new + data[at + 8 + len(old):]


HOSTILE_SECOND_PARTS = {
    "tensor count": (lambda d: d[:8] + struct.pack("<Q", 1 << 40) + d[16:],
                     "tensor count 1099511627776 is out of bounds"),
    "truncated data": (lambda d: d[: len(d) // 2], "lies outside the"),
    "64-byte tensor name": (lambda d: rename_tensor(d, b"output_norm.weight", b"n" * 64),
                            "is 64 bytes long (at most 63 allowed)"),
    "empty tensor name": (lambda d: rename_tensor(d, b"output_norm.weight", b""), "has an empty name"),
    "not a GGUF": (lambda d: b"\1" * len(d), "not a GGUF file (bad magic)"),
}


@pytest.fixture(scope="module")
def good_part(tmp_path_factory) -> bytes:
    return write_llama3_gguf(tmp_path_factory.mktemp("part") / "p.gguf", tensor_bytes=64 << 10).read_bytes()


def make_set(folder: Path, first: bytes, second) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PART1).write_bytes(first)
    if second is not None:
        (folder / PART2).write_bytes(second)
    return folder / PART1


def test_a_sound_split_set_is_usable(good_part):
    make_set(data_paths().models / "org" / "Tiny-GGUF", good_part, good_part)
    (entry,) = library.scan()
    assert entry.usable and entry.files[-1].name == PART2 and entry.size == 2 * len(good_part)
    assert len(validate_gguf_set(entry.path)) == 2


@pytest.mark.parametrize("kind", list(HOSTILE_SECOND_PARTS))
def test_a_hostile_second_part_makes_the_set_unusable(good_part, kind):
    change, reason = HOSTILE_SECOND_PARTS[kind]
    first = make_set(data_paths().models / "org" / "Tiny-GGUF", good_part, change(good_part))
    (entry,) = library.scan()
    assert not entry.usable
    assert entry.problem.startswith(f"part 2 of 2 ({PART2}): ") and reason in entry.problem, entry.problem
    with pytest.raises(UnsafeGGUFError, match=r"part 2 of 2 \(" + PART2.replace(".", r"\.")):
        validate_gguf_set(first)


def test_a_missing_part_is_named(good_part):
    make_set(data_paths().models / "org" / "Tiny-GGUF", good_part, None)
    (entry,) = library.scan()
    assert entry.problem == f"part 2 of 2 ({PART2}) is missing"
    (data_paths().models / "org" / "Tiny-GGUF" / PART1).rename(data_paths().models / "org" / "Tiny-GGUF" / PART2)
    (entry,) = library.scan()
    assert entry.problem == f"part 1 of 2 ({PART1}) is missing"


def test_the_models_command_and_the_engine_refuse_the_set(good_part):
    change, reason = HOSTILE_SECOND_PARTS["tensor count"]
    first = make_set(data_paths().models / "org" / "Tiny-GGUF", good_part, change(good_part))
    out = subprocess.run([sys.executable, "main.py", "models"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith(PART1))
    assert "refused" in row and f"part 2 of 2 ({PART2}): tensor count" in row
    from engine.llama_backend import LlamaCppBackend

    with pytest.raises(EngineError, match=rf"{PART1} was refused: part 2 of 2 \({PART2}\): tensor count"):
        LlamaCppBackend(first).load()


def test_a_changed_second_part_is_validated_again(good_part):
    """The library's cache is keyed on every part, not only the first."""
    folder = data_paths().models / "org" / "Tiny-GGUF"
    make_set(folder, good_part, good_part)
    assert library.scan()[0].usable
    hostile = HOSTILE_SECOND_PARTS["tensor count"][0](good_part)
    (folder / PART2).write_bytes(hostile)
    os.utime(folder / PART2, ns=(1, 1))
    assert not library.scan()[0].usable
