"""The GGUF validator: named refusals, and a fuzz run that never crashes, hangs or lets a
range leave the file (accepted files are re-read independently with gguf.GGUFReader)."""
from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from models.gguf_validate import UnsafeGGUFError, validate_gguf, validate_gguf_bytes
from tests.fixtures.hub_server import write_llama3_gguf


def s(b: bytes) -> bytes:
    return struct.pack("<Q", len(b)) + b


def build(kvs=(), tensors=(), data=b"", *, version=3, n_tensors=None, n_keys=None, alignment=32) -> bytes:
    """GGUF bytes from parts: kvs are (key, vtype, encoded value); tensors (name, dims, type, offset)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                                len(kvs) if n_keys is None else n_keys)
    for key, vtype, raw in kvs:
        out += s(key) + struct.pack("<I", vtype) + raw
    for name, dims, ttype, offset in tensors:
        out += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<q", d) for d in dims)
        out += struct.pack("<IQ", ttype, offset)
    out += b"\0" * (-len(out) % alignment)
    return out + data


F32, Q8_0 = 0, 8
GOOD = dict(kvs=[(b"general.architecture", 8, s(b"llama")),
                 (b"tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 2) + s(b"a") + s(b"b"))],
            tensors=[(b"a", [32, 2], F32, 0), (b"b", [64], Q8_0, 256)], data=b"\1" * (256 + 68))


def test_a_well_formed_file_passes(tmp_path, smollm2_path):
    assert validate_gguf_bytes(build(**GOOD)).n_tensors == 2
    summary = validate_gguf(smollm2_path)
    assert summary.n_tensors == 272 and summary.version == 3
    assert validate_gguf(write_llama3_gguf(tmp_path / "t.gguf", tensor_bytes=4096)).n_keys == 19


@pytest.mark.parametrize("change, problem", [
    (lambda g: b"GGUX" + build(**g)[4:], "bad magic"),
    (lambda g: build(**g, version=1), "unsupported GGUF version 1"),
    (lambda g: build(**g, n_tensors=1 << 40), "tensor count"),
    (lambda g: build(**g, n_keys=1 << 62), "key count"),
    (lambda g: build(**{**g, "data": g["data"][:-1]}), "tensor b data [480, 548) lies outside the 547-byte file"),
    (lambda g: build(**{**g, "tensors": [(b"a", [32, 2], F32, 16), g["tensors"][1]]}), "not aligned"),
    (lambda g: build(**{**g, "tensors": [(b"a", [32, 2], F32, 0), (b"b", [64], Q8_0, 224)]}), "overlap"),
    (lambda g: build(**{**g, "tensors": [(b"a", [32, 0], F32, 0)]}), "non-positive dimension"),
    (lambda g: build(**{**g, "tensors": [(b"a", [1 << 40, 1 << 40], F32, 0)]}), "overflows"),
    (lambda g: build(**{**g, "tensors": [(b"a", [32], 77, 0)]}), "unknown type 77"),
    (lambda g: build(**{**g, "tensors": [(b"a", [30], Q8_0, 0)]}), "not a whole number of 32-element blocks"),
    (lambda g: build(**{**g, "tensors": [(b"a", [1] * 5, F32, 0)]}), "5 dimensions"),
    (lambda g: build(**{**g, "tensors": [g["tensors"][0]] * 2}), "duplicate tensor name a"),
    (lambda g: build(**{**g, "tensors": [(b"", [32, 2], F32, 0)]}), "tensor #0 has an empty name"),
    (lambda g: build(**{**g, "tensors": [(b"x" * 64, [32, 2], F32, 0)]}), "is 64 bytes long (at most 63"),
    (lambda g: build(**{**g, "kvs": [(b"k", 9, struct.pack("<IQ", 9, 1))]}), "nested arrays"),
    (lambda g: build(**{**g, "kvs": [(b"k", 13, b"")]}), "unknown value type 13"),
    (lambda g: build(**{**g, "kvs": [(b"k", 8, struct.pack("<Q", 1 << 60))]}), "string value of k"),
    (lambda g: build(**{**g, "kvs": [(b"k", 9, struct.pack("<IQ", 8, 1 << 59))]}), "array k"),
    (lambda g: build(**{**g, "kvs": [(b"general.alignment", 4, struct.pack("<I", 24))]}), "power of two"),
    (lambda g: build(**{**g, "kvs": [(b"k", 4, b"\0" * 4)] * 2}), "duplicate key k"),
])
def test_each_problem_is_named(change, problem):
    with pytest.raises(UnsafeGGUFError) as err:
        validate_gguf_bytes(change(GOOD))
    assert problem in str(err.value)


def test_a_63_byte_tensor_name_is_llama_cpps_limit_and_passes():
    assert validate_gguf_bytes(build(**{**GOOD, "tensors": [(b"x" * 63, [32, 2], F32, 0)]})).n_tensors == 1


def test_unreadable_and_empty_files_are_refused(tmp_path):
    (tmp_path / "empty.gguf").write_bytes(b"")
    with pytest.raises(UnsafeGGUFError, match="empty.gguf: empty file"):
        validate_gguf(tmp_path / "empty.gguf")
    with pytest.raises(UnsafeGGUFError, match="cannot read"):
        validate_gguf(tmp_path / "missing.gguf")


# --- fuzzing ------------------------------------------------------------------------

def _writer_gguf(path) -> bytes:
    """A small file from gguf's own writer, with several tensor types and arrays."""
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("fuzz base")
    w.add_context_length(128)
    w.add_token_list(["a", "b", "<|eot_id|>"])
    w.add_token_scores([0.0, -1.0, 0.5])
    w.add_array("fuzz.ints", [1, 2, 3])
    w.add_bool("fuzz.flag", True)
    w.add_tensor("f32", np.arange(64, dtype=np.float32).reshape(2, 32))
    w.add_tensor("f16", np.ones((4, 32), dtype=np.float16))
    q8 = np.zeros((2, 34), dtype=np.uint8)
    w.add_tensor("q8", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


EXTREMES = [0, 1, 2, 3, 7, 8, 31, 32, 255, 1 << 31, (1 << 32) - 1, 1 << 32, 1 << 62, (1 << 63) - 1,
            1 << 63, (1 << 64) - 1]


def _mutate(rng: random.Random, base: bytes, header_end: int) -> bytes:
    b = bytearray(base)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        pos = rng.randrange(0, min(len(b), header_end if rng.random() < 0.9 else len(b)))
        op = rng.random()
        if op < 0.35:
            b[pos] ^= 1 << rng.randrange(8)
        elif op < 0.55:
            b[pos] = rng.randrange(256)
        elif op < 0.8 and pos + 8 <= len(b):
            b[pos:pos + 8] = struct.pack("<Q", rng.choice(EXTREMES + [rng.randrange(1 << 64)]))
        elif op < 0.9:
            del b[rng.randrange(1, max(2, len(b))):]
        else:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
    return bytes(b)


def _generate(rng: random.Random) -> bytes:
    """A file assembled from random parts: counts, types and lengths sometimes lie."""
    kvs = []
    for i in range(rng.randrange(0, 5)):
        vtype = rng.choice([0, 4, 6, 7, 8, 9, 10, 12, 13, 99])
        if vtype == 8:
            body = b"x" * rng.randrange(0, 20)
            raw = struct.pack("<Q", rng.choice([len(body), len(body), rng.choice(EXTREMES)])) + body
        elif vtype == 9:
            etype = rng.choice([4, 8, 9, 42])
            n = rng.randrange(0, 6)
            items = b"".join(s(b"ab") if etype == 8 else struct.pack("<I", 7) for _ in range(n))
            raw = struct.pack("<IQ", etype, rng.choice([n, n, rng.choice(EXTREMES)])) + items
        else:
            raw = bytes(rng.randrange(256) for _ in range(rng.choice([1, 2, 4, 8])))
        kvs.append((f"k{i}".encode(), vtype, raw))
    tensors, offset = [], 0
    for i in range(rng.randrange(0, 4)):
        ttype = rng.choice([0, 1, 8, 2, 12, 4, 5, 77])
        dims = [rng.choice([32, 64, 256, 1, 0, -1, rng.choice(EXTREMES) % (1 << 63)])
                for _ in range(rng.choice([1, 2, 3, 4, 5]))]
        tensors.append((f"t{i}".encode(), dims, ttype, rng.choice([offset, offset, rng.choice(EXTREMES)])))
        offset += 256
    data = b"\0" * rng.choice([0, 64, 256, 1024, 4096])
    return build(kvs, tensors, data, version=rng.choice([3, 3, 3, 2, 1, 4]),
                 n_tensors=rng.choice([None, None, None, rng.choice(EXTREMES)]),
                 n_keys=rng.choice([None, None, None, rng.choice(EXTREMES)]))


def _independently_inside(tmp_path, blob: bytes, i: int) -> None:
    """Re-read an accepted file with gguf.GGUFReader; every tensor must lie inside the file."""
    import gguf

    path = tmp_path / f"accepted-{i % 8}.gguf"
    path.write_bytes(blob)
    reader = gguf.GGUFReader(path)
    for t in reader.tensors:
        assert 0 <= t.data_offset and t.data_offset + int(t.n_bytes) <= len(blob), (i, t.name)
    del reader


@pytest.mark.slow
@pytest.mark.timeout(240)        # a hang fails here; per-case times are in bench/gguf_header.py
def test_fuzz_never_crashes_hangs_or_accepts_out_of_file_ranges(tmp_path, smollm2_path):
    rng = random.Random(20240418)
    bases = [_writer_gguf(tmp_path / "base.gguf"),
             write_llama3_gguf(tmp_path / "llama3.gguf", tensor_bytes=1024).read_bytes(),
             build(**GOOD)]
    counts = {"cases": 0, "accepted": 0, "refused": 0}

    def run(blob: bytes, i: int, check_accepted: bool = True):
        try:
            validate_gguf_bytes(blob)
        except UnsafeGGUFError:
            counts["refused"] += 1
        else:
            counts["accepted"] += 1
            if check_accepted:
                _independently_inside(tmp_path, blob, i)
        counts["cases"] += 1

    for i in range(6000):                      # mutated real headers (gguf's writer)
        base = bases[i % len(bases)]
        header_end = validate_gguf_bytes(base).data_offset
        run(_mutate(rng, base, header_end), i)
    for i in range(4000):                      # generated from random parts
        run(_generate(rng), i)

    # The real SmolLM2 file, mutated in place (tensor-info region and first bytes), then restored.
    real = bytearray(smollm2_path.read_bytes())
    header_end = validate_gguf_bytes(real).data_offset
    for i in range(40):
        pos = rng.randrange(header_end - 16384, header_end - 8) if i % 4 else rng.randrange(0, 64)
        saved = bytes(real[pos:pos + 8])
        real[pos:pos + 8] = struct.pack("<Q", rng.choice(EXTREMES + [rng.randrange(1 << 64)]))
        run(real, i, check_accepted=False)
        real[pos:pos + 8] = saved

    assert counts["cases"] >= 10_000
    assert counts["refused"] > 1000 and counts["accepted"] > 100, counts
    print(f"\nGGUF fuzz: {counts}")
