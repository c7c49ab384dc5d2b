"""Property tests (Hypothesis) for parsers that take outside input: Hub file names (the
path check), checkpoint config.json, safetensors headers and GGUF headers.

Each property: the parser either accepts, and then what it accepted is within bounds
(inside the folder, inside the file, within the config ranges), or refuses with its
own error type and one sentence; never another exception. Example counts come from
the profile in conftest.py ("ci" by default, HYPOTHESIS_PROFILE=thorough for more).
"""
from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import assume, given, strategies as st

from common.safe_paths import UnsafePathError, check_commit, check_name, safe_join
from converters.checkpoint import INT_RANGES, LlamaConfig, parse_config
from converters.errors import ConversionError
from converters.safetensors_reader import KNOWN_DTYPES, read_header
from models import file_download
from models.gguf_validate import MAX_TENSOR_NAME, UnsafeGGUFError, validate_gguf_bytes

ROOT = Path(tempfile.gettempdir()) / "llamadesk-property-root"

# --- Hub file names -------------------------------------------------------------------

PATHY = st.sampled_from(["..", ".", "/", "\\", ":", "C:", "a", "b.gguf", "\x00", "\n", " ", "..\\", "~",
                         "%2e%2e", "\u2025", "\uff0e\uff0e", "//", "é", "con", "-"])
names = st.one_of(st.text(max_size=40), st.lists(PATHY, max_size=8).map("".join),
                  st.lists(st.one_of(PATHY, st.text(min_size=1, max_size=5)), max_size=6).map("/".join))


@given(names)
def test_a_hub_file_name_is_refused_or_stays_inside(name):
    try:
        path = safe_join(ROOT, name)
    except UnsafePathError as exc:
        text = str(exc)
        assert text.startswith("Refused the file name ") and "\n" not in text and text.endswith(".")
        return
    parts = name.split("/")
    assert all(p not in ("", ".", "..") for p in parts)
    assert not any(c in name for c in "\\:\x00")
    rel = os.path.relpath(os.path.normpath(path), os.path.normpath(ROOT))
    assert rel == os.path.join(*parts) and rel.split(os.sep)[0] != ".." and not os.path.isabs(rel)


@given(names, st.sampled_from(["bartowski/Llama-3.2-1B-Instruct-GGUF", "org/repo", "../x", "a/b/c", "a\\b"]))
def test_a_download_path_is_refused_or_inside_the_models_folder(name, repo_id):
    remote = file_download.RemoteFile(repo_id, name + ".gguf", "main", "0" * 40, "http://127.0.0.1/x", 1,
                              "0" * 64, None)
    models = ROOT / "models"
    try:
        path = file_download.final_path(remote, models)
    except UnsafePathError as exc:
        assert str(exc).startswith("Refused the ") and "\n" not in str(exc)
        return
    rel = os.path.relpath(os.path.normpath(path), os.path.normpath(models))
    assert rel.split(os.sep)[0] != ".." and rel.split(os.sep)[:2] == repo_id.split("/")


@given(st.one_of(st.text(max_size=45), st.text("0123456789abcdefABCDEF./", min_size=38, max_size=42)))
def test_a_commit_id_is_forty_lowercase_hex_digits_or_refused(commit):
    try:
        check_commit(commit)
    except UnsafePathError as exc:
        assert str(exc).startswith("Refused the commit id ")
        return
    assert len(commit) == 40 and set(commit) <= set("0123456789abcdef")


@given(st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\:"),
                        min_size=1, max_size=12).filter(lambda p: p not in (".", "..")),
                min_size=1, max_size=5))
def test_plain_relative_names_are_accepted(parts):
    name = "/".join(parts)
    assume(len(name.encode()) <= 4096 and all(len(p.encode()) <= 255 for p in parts))
    assert check_name(name) == name
    assert safe_join(ROOT, name) == ROOT.joinpath(*parts)


# --- checkpoint config.json --------------------------------------------------------------

BASE_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256,
               "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "vocab_size": 1024, "max_position_embeddings": 2048,
               "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
               "torch_dtype": "bfloat16"}
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
              st.sampled_from([0, -1, 1, 2, 3, 64, 512, 513, 1 << 16, 1 << 31, 1 << 63, 10 ** 9, 10 ** 30])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)
rope_scaling = st.one_of(json_values, st.fixed_dictionaries(
    {"rope_type": st.sampled_from(["llama3", "linear", None])},
    optional={"factor": json_values, "low_freq_factor": json_values, "high_freq_factor": json_values,
              "original_max_position_embeddings": json_values}))
config_changes = st.dictionaries(
    st.sampled_from(sorted(BASE_CONFIG) + ["head_dim", "rope_scaling"]),
    json_values, max_size=4).flatmap(
    lambda d: st.builds(lambda rs: {**d, **({"rope_scaling": rs} if "rope_scaling" in d else {})}, rope_scaling))


@given(config_changes)
def test_a_config_is_refused_or_within_bounds(changes):
    cfg = {**BASE_CONFIG, **changes}
    try:
        c = parse_config(cfg)
    except ConversionError as exc:
        assert "\n" not in str(exc) and str(exc).endswith(".")
        return
    assert isinstance(c, LlamaConfig)
    for field, key in [("n_layers", "num_hidden_layers"), ("hidden_size", "hidden_size"),
                       ("intermediate_size", "intermediate_size"), ("n_heads", "num_attention_heads"),
                       ("n_kv_heads", "num_key_value_heads"), ("vocab_size", "vocab_size"),
                       ("context_length", "max_position_embeddings"), ("head_dim", "head_dim")]:
        lo, hi = INT_RANGES[key]
        value = getattr(c, field)
        assert type(value) is int and lo <= value <= hi, (field, value)
    assert c.n_heads % c.n_kv_heads == 0 and c.head_dim % 2 == 0
    assert math.isfinite(c.rope_theta) and c.rope_theta > 0 and 0 < c.rms_norm_eps < 1
    assert c.rope_scaling is None or (isinstance(c.rope_scaling, dict) and all(
        isinstance(c.rope_scaling[k], (int, float)) and math.isfinite(c.rope_scaling[k])
        for k in ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
        if k in c.rope_scaling))


# --- safetensors headers ------------------------------------------------------------------

dtypes = st.one_of(st.sampled_from(sorted(KNOWN_DTYPES)), json_values)
shapes = st.one_of(st.lists(st.integers(-2, 40), max_size=3), json_values)
offsets = st.one_of(st.lists(st.integers(-8, 600), min_size=2, max_size=2), json_values)
entries = st.one_of(st.fixed_dictionaries({"dtype": dtypes, "shape": shapes, "data_offsets": offsets}),
                    json_values)


@st.composite
def mostly_sound_headers(draw) -> dict:
    """Tensors laid out as a writer would, with an occasional lie in one field."""
    header, pos = {}, 0
    for i in range(draw(st.integers(0, 4))):
        dtype = draw(st.sampled_from(sorted(KNOWN_DTYPES)))
        shape = draw(st.lists(st.integers(0, 6), max_size=3))
        n = math.prod(shape) * KNOWN_DTYPES[dtype]
        start = draw(st.one_of(st.just(pos), st.integers(0, 700)))
        end = draw(st.one_of(st.just(start + n), st.integers(-1, 800)))
        pos = start + n
        entry = {"dtype": dtype, "shape": shape, "data_offsets": [start, end]}
        if draw(st.integers(0, 9)) == 0:
            entry[draw(st.sampled_from(["dtype", "shape", "data_offsets"]))] = draw(json_values)
        header[draw(st.one_of(st.just(f"t{i}"), st.text(max_size=6)))] = entry
    if draw(st.booleans()):
        header["__metadata__"] = draw(json_values)
    return header


headers = st.one_of(st.dictionaries(st.text(max_size=10), entries, max_size=5), mostly_sound_headers())


def _safetensors(header_bytes: bytes, data_len: int, claimed=None) -> Path:
    f = tempfile.NamedTemporaryFile(suffix=".safetensors", delete=False)
    n = len(header_bytes) if claimed is None else claimed
    f.write(struct.pack("<Q", n) + header_bytes + b"\0" * data_len)
    f.close()
    return Path(f.name)


def _check_header(path: Path) -> None:
    size = path.stat().st_size
    try:
        refs = read_header(path)
    except ConversionError as exc:
        assert "\n" not in str(exc) and str(exc).endswith(".")
        return
    finally:
        pass
    spans = sorted((r.offset, r.offset + r.nbytes) for r in refs.values())
    for r in refs.values():
        assert r.dtype in KNOWN_DTYPES and all(type(d) is int and d >= 0 for d in r.shape)
        assert r.nbytes == math.prod(r.shape) * KNOWN_DTYPES[r.dtype]
        assert 8 <= r.offset and r.offset + r.nbytes <= size
    for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
        assert a1 <= b0 or a0 == a1 or b0 == b1


@given(headers, st.integers(0, 700))
def test_a_safetensors_header_is_refused_or_inside_the_file(header, data_len):
    path = _safetensors(json.dumps(header).encode(), data_len)
    try:
        _check_header(path)
    finally:
        path.unlink()


@given(st.binary(max_size=64), st.one_of(st.none(), st.sampled_from([0, 1, 7, 1 << 40, (1 << 64) - 1])),
       st.integers(0, 64))
def test_arbitrary_safetensors_bytes_are_refused_or_inside_the_file(raw, claimed, data_len):
    path = _safetensors(raw, data_len, claimed)
    try:
        _check_header(path)
    finally:
        path.unlink()


# --- GGUF headers -------------------------------------------------------------------------

EXTREME = st.sampled_from([0, 1, 2, 31, 32, 63, 64, 255, 1 << 31, (1 << 32) - 1, 1 << 32, 1 << 62,
                           (1 << 63) - 1, 1 << 63, (1 << 64) - 1])


def _s(b: bytes, n=None) -> bytes:
    return struct.pack("<Q", len(b) if n is None else n) + b


@st.composite
def gguf_files(draw) -> bytes:
    """A GGUF assembled from drawn parts; counts, types and lengths sometimes lie."""
    kvs = []
    for i in range(draw(st.integers(0, 4))):
        vtype = draw(st.sampled_from([0, 2, 4, 6, 7, 8, 9, 10, 12, 13]))
        if vtype == 8:
            body = draw(st.binary(max_size=12))
            raw = _s(body, draw(st.one_of(st.just(len(body)), EXTREME)))
        elif vtype == 9:
            etype = draw(st.sampled_from([4, 8, 9, 42]))
            n = draw(st.integers(0, 4))
            items = b"".join(_s(b"ab") if etype == 8 else struct.pack("<I", 7) for _ in range(n))
            raw = struct.pack("<IQ", etype, draw(st.one_of(st.just(n), EXTREME))) + items
        else:
            raw = draw(st.binary(min_size=1, max_size=8))
        key = draw(st.sampled_from([f"k{i}".encode(), b"general.alignment", b"split.count", b"", b"k0"]))
        kvs.append((key, vtype, raw))
    tensors = []
    for i in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from([f"t{i}".encode(), b"", b"x" * MAX_TENSOR_NAME, b"x" * (MAX_TENSOR_NAME + 1),
                                     b"\xff\xfe", b"t0"]))
        dims = draw(st.lists(st.one_of(st.sampled_from([1, 32, 64, 256, 0, -1]), EXTREME.map(lambda v: v % (1 << 63))),
                             min_size=0, max_size=5))
        ttype = draw(st.sampled_from([0, 1, 2, 8, 12, 77]))
        offset = draw(st.one_of(st.sampled_from([0, 32, 256, 1024]), EXTREME))
        tensors.append((name, dims, ttype, offset))
    out = b"GGUF" + struct.pack("<I", draw(st.sampled_from([3, 3, 2, 1, 4])))
    out += struct.pack("<QQ", draw(st.one_of(st.just(len(tensors)), EXTREME)),
                       draw(st.one_of(st.just(len(kvs)), EXTREME)))
    for key, vtype, raw in kvs:
        out += _s(key) + struct.pack("<I", vtype) + raw
    for name, dims, ttype, offset in tensors:
        out += _s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<q", d % (1 << 63)) for d in dims)
        out += struct.pack("<IQ", ttype, offset)
    out += b"\0" * (-len(out) % 32)
    out += b"\1" * draw(st.sampled_from([0, 64, 256, 2048]))
    cut = draw(st.one_of(st.none(), st.integers(0, len(out))))
    return out if cut is None else out[:cut]


@given(gguf_files())
def test_a_gguf_header_is_refused_or_every_tensor_lies_inside_the_file(blob):
    try:
        summary = validate_gguf_bytes(blob)
    except UnsafeGGUFError as exc:
        assert "\n" not in str(exc)
        return
    assert summary.file_size == len(blob) and summary.data_offset <= len(blob) or summary.n_tensors == 0
    import gguf

    with tempfile.NamedTemporaryFile(suffix=".gguf", delete=False) as f:
        f.write(blob)
    try:
        reader = gguf.GGUFReader(f.name)
        for t in reader.tensors:
            assert 0 < len(t.name.encode()) <= MAX_TENSOR_NAME
            assert 0 <= t.data_offset and t.data_offset + int(t.n_bytes) <= len(blob)
        del reader
    finally:
        os.unlink(f.name)


@given(st.binary(max_size=256))
def test_arbitrary_bytes_never_crash_the_gguf_validator(blob):
    try:
        validate_gguf_bytes(b"GGUF" + blob)
    except UnsafeGGUFError:
        pass


@pytest.mark.parametrize("name", ["../evil", "/abs", "C:\\x", "a\\..\\b"])
def test_the_issues_examples_are_refused(name):
    with pytest.raises(UnsafePathError):
        check_name(name)
