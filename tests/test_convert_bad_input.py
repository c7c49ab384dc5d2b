"""Bad input: each gives one clear ConversionError sentence and leaves no output behind."""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from common.task import Cancelled, TaskHandle
from converters import preflight
from converters.errors import ConversionError
from converters.pipeline import convert_checkpoint

# The message each bad input gave, printed at the end of the run (pytest -s) for the record.
MESSAGES: dict[str, str] = {}


@pytest.fixture
def ckpt(tmp_path, tiny_llama):
    dest = tmp_path / "ckpt"
    shutil.copytree(tiny_llama.path, dest)
    return dest


@pytest.fixture
def out_dir(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    return d


def _fails(label: str, src: Path, out_dir: Path, qtype: str = "f16", **kw) -> str:
    with pytest.raises(ConversionError) as err:
        convert_checkpoint(src, out_dir / "model.gguf", qtype, **kw)
    message = str(err.value)
    MESSAGES[label] = message
    assert "\n" not in message and message.endswith((".", "!")), message
    assert "Traceback" not in message
    assert list(out_dir.iterdir()) == [], "a failed conversion left files behind"
    return message


def _rewrite_header(path: Path, edit) -> None:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    edit(header)
    raw = json.dumps(header).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])


def _shards(src: Path) -> list[Path]:
    return sorted(src.glob("model-*.safetensors"))


def test_missing_config(ckpt, out_dir):
    (ckpt / "config.json").unlink()
    msg = _fails("missing config.json", ckpt, out_dir)
    assert "config.json" in msg


def test_missing_shard(ckpt, out_dir):
    shard = _shards(ckpt)[-1]
    shard.unlink()
    msg = _fails("missing shard", ckpt, out_dir)
    assert shard.name in msg and "incomplete" in msg


def test_truncated_safetensors(ckpt, out_dir):
    shard = _shards(ckpt)[0]
    data = shard.read_bytes()
    shard.write_bytes(data[:len(data) - 4096])
    msg = _fails("truncated shard", ckpt, out_dir)
    assert shard.name in msg and "truncated" in msg


def test_header_offsets_out_of_range(ckpt, out_dir):
    shard = _shards(ckpt)[0]

    def edit(h):
        name = next(k for k in h if k.endswith("q_proj.weight"))
        a, b = h[name]["data_offsets"]
        h[name]["data_offsets"] = [a + 10 ** 9, b + 10 ** 9]

    _rewrite_header(shard, edit)
    msg = _fails("header offsets out of range", ckpt, out_dir)
    assert "q_proj" in msg and "outside" in msg


def test_dtype_shape_mismatch(ckpt, out_dir):
    shard = _shards(ckpt)[0]

    def edit(h):
        h["model.embed_tokens.weight"]["dtype"] = "F32"

    _rewrite_header(shard, edit)
    msg = _fails("dtype/shape mismatch", ckpt, out_dir)
    assert "model.embed_tokens.weight" in msg and "F32" in msg


def test_overlapping_tensors(ckpt, out_dir):
    shard = _shards(ckpt)[0]

    def edit(h):
        # move the second tensor 2 bytes back, into the first one
        names = sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0])
        a, b = h[names[1]]["data_offsets"]
        h[names[1]]["data_offsets"] = [a - 2, b - 2]

    _rewrite_header(shard, edit)
    msg = _fails("overlapping tensors", ckpt, out_dir)
    assert "overlap" in msg


def test_unsupported_architecture(ckpt, out_dir):
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg.update(architectures=["Qwen2ForCausalLM"], model_type="qwen2")
    (ckpt / "config.json").write_text(json.dumps(cfg))
    msg = _fails("unsupported architecture", ckpt, out_dir)
    assert "Qwen2ForCausalLM" in msg and "Llama 3" in msg


def test_not_the_llama3_tokenizer(ckpt, out_dir):
    tok = json.loads((ckpt / "tokenizer.json").read_text())
    tok["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"\s+|\w+"
    (ckpt / "tokenizer.json").write_text(json.dumps(tok))
    msg = _fails("tokenizer is not Llama 3's BPE", ckpt, out_dir)
    assert "tokenizer" in msg and "Llama 3" in msg


def test_pickle_only_folder(tmp_path, tiny_llama, out_dir):
    src = tmp_path / "pickled"
    src.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_llama.path / name, src / name)
    (src / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    msg = _fails("pickle-only folder", src, out_dir)
    assert "pytorch_model.bin" in msg and "arbitrary code" in msg and ".safetensors" in msg


def test_output_disk_too_small(ckpt, out_dir, monkeypatch):
    monkeypatch.setattr(preflight, "free_bytes", lambda folder: 5_000_000)
    msg = _fails("output disk too small", ckpt, out_dir, qtype="q4_k_m")
    assert "Not enough disk space" in msg and str(out_dir) in msg and "5.0 MB" in msg


def test_output_folder_not_writable(ckpt, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    with pytest.raises(ConversionError) as err:
        convert_checkpoint(ckpt, blocker / "model.gguf", "f16")
    MESSAGES["output folder not writable"] = str(err.value)
    assert str(err.value) == f"Cannot write the output to {blocker}: {blocker} is a file, not a folder."
    assert blocker.read_text().startswith("a file")


def test_unknown_output_type(ckpt, out_dir):
    msg = _fails("unknown --type", ckpt, out_dir, qtype="q3_k_xl")
    assert "q4_k_m" in msg


def test_cancel_mid_conversion(ckpt, out_dir):
    seen = []

    def on_progress(p):
        seen.append(p.extra.get("tensor"))
        if p.extra.get("tensor", 0) >= 5:
            handle.cancel()

    handle = TaskHandle(on_progress=on_progress)
    with pytest.raises(Cancelled):
        convert_checkpoint(ckpt, out_dir / "model.gguf", "f16", handle=handle)
    assert max(t for t in seen if t is not None) == 5, "conversion went on past the cancelled tensor"
    assert list(out_dir.iterdir()) == []
    MESSAGES["cancel mid-way"] = "Cancelled raised within one tensor; no output left"


def teardown_module(module):
    for label, msg in MESSAGES.items():
        print(f"\n[{label}] {msg}", end="")
