"""Hostile checkpoint JSON: refused with a sentence before anything is sized from it, and
a malformed JSON file in the HF cache or the library index never stops a library scan."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from common.paths import data_paths
from converters.errors import ConversionError
from converters.pipeline import convert_checkpoint
from models import hub_env, library

ROOT = Path(__file__).resolve().parents[1]
CAP_BYTES = 1_500_000_000   # the child's address-space cap (RLIMIT_AS)


@pytest.fixture
def ckpt(tmp_path, tiny_llama):
    dest = tmp_path / "ckpt"
    shutil.copytree(tiny_llama.path, dest)
    return dest


def edit_config(folder: Path, **changes) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))


def refused(src: Path, out_dir: Path) -> str:
    with pytest.raises(ConversionError) as err:
        convert_checkpoint(src, out_dir / "model.gguf", "f16")
    message = str(err.value)
    assert "\n" not in message and message.endswith(".") and "Traceback" not in message
    assert not out_dir.exists() or list(out_dir.iterdir()) == []
    return message


def capped_convert(src: Path, out: Path) -> subprocess.CompletedProcess:
    """`llamadesk convert` in a child whose address space is capped before anything runs."""
    code = textwrap.dedent(f"""
        import resource, runpy, sys
        resource.setrlimit(resource.RLIMIT_AS, ({CAP_BYTES}, {CAP_BYTES}))
        sys.argv = ["main.py", "convert", {str(src)!r}, "--out", {str(out)!r}, "--type", "f16"]
        try:
            runpy.run_path("main.py", run_name="__main__")
        finally:
            print("maxrss_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
    """)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_a_billion_layers_is_refused_before_any_big_allocation(ckpt, tmp_path):
    edit_config(ckpt, num_hidden_layers=1_000_000_000)
    out = capped_convert(ckpt, tmp_path / "out" / "m.gguf")
    assert out.returncode == 1, out.stderr[-2000:]
    assert "MemoryError" not in out.stderr and "Traceback" not in out.stderr
    error = next(line for line in out.stderr.splitlines() if line.startswith("error: "))
    assert error == ("error: config.json has num_hidden_layers = 1000000000, but it must be a whole number "
                     "from 1 to 512; this is not a usable Llama 3 config, download the model again.")
    assert not (tmp_path / "out" / "m.gguf").exists()


@pytest.mark.parametrize("changes, words", [
    (dict(vocab_size=-1), "vocab_size = -1, but it must be a whole number from 1 to"),
    (dict(vocab_size=10 ** 12), "vocab_size = 1000000000000"),
    (dict(hidden_size="4096"), "hidden_size = '4096'"),
    (dict(hidden_size=True), "hidden_size = True"),
    (dict(intermediate_size=2.5), "intermediate_size = 2.5"),
    (dict(num_attention_heads=0), "num_attention_heads = 0"),
    (dict(num_key_value_heads=[2]), "num_key_value_heads = [2]"),
    (dict(num_key_value_heads=3), "impossible attention layout"),
    (dict(max_position_embeddings=1e30), "max_position_embeddings = 1e+30"),
    (dict(rope_theta=float("nan")), "rope_theta = nan, but it must be a number"),
    (dict(rope_theta=float("inf")), "rope_theta = inf"),
    (dict(rope_theta="500000"), "rope_theta = '500000'"),
    (dict(rms_norm_eps=-1), "rms_norm_eps = -1"),
    (dict(rope_scaling="llama3"), "rope_scaling = 'llama3', but it must be an object"),
    (dict(rope_scaling=[1, 2]), "rope_scaling = [1, 2], but it must be an object"),
    (dict(rope_scaling={"rope_type": "llama3", "factor": "8"}), "rope_scaling.factor = '8'"),
    (dict(rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0,
                        "high_freq_factor": 4.0}), "high_freq_factor not above low_freq_factor"),
    (dict(rope_scaling={"rope_type": "llama3", "original_max_position_embeddings": 1e12}),
     "rope_scaling.original_max_position_embeddings"),
    (dict(tie_word_embeddings="yes"), "tie_word_embeddings = 'yes'"),
    (dict(architectures=[{"x": 1}]), "models are not supported"),
])
def test_each_hostile_config_value_is_named(ckpt, tmp_path, changes, words):
    edit_config(ckpt, **changes)
    assert words in refused(ckpt, tmp_path / "out")


@pytest.mark.parametrize("text, words", [
    ("[1, 2, 3]", "is not a JSON object"),
    ('{"a": ' + "[" * 100_000, "nested too deeply"),
    ('{"hidden_size": ', "cannot be read"),
])
def test_a_malformed_config_file_is_named(ckpt, tmp_path, text, words):
    (ckpt / "config.json").write_text(text)
    assert words in refused(ckpt, tmp_path / "out")


@pytest.mark.parametrize("shard", ["../../evil.safetensors", "/etc/passwd", "a\\..\\b.safetensors",
                                   "C:evil.safetensors", "ok.bin"])
def test_a_hostile_shard_name_in_the_index_is_refused(ckpt, tmp_path, shard):
    index = json.loads((ckpt / "model.safetensors.index.json").read_text())
    first = next(iter(index["weight_map"]))
    index["weight_map"][first] = shard
    (ckpt / "model.safetensors.index.json").write_text(json.dumps(index))
    msg = refused(ckpt, tmp_path / "out")
    assert msg.startswith(f"Refused the shard name {shard!r} in model.safetensors.index.json"), msg


def test_a_shard_linked_out_of_the_folder_is_refused(ckpt, tmp_path):
    shard = sorted(ckpt.glob("model-*.safetensors"))[0]
    outside = tmp_path / "elsewhere.safetensors"
    shard.rename(outside)
    shard.symlink_to(outside)
    assert "a link leads it outside" in refused(ckpt, tmp_path / "out")


# --- the library scan ------------------------------------------------------------

def hf_snapshot(repo_id: str, src: Path) -> Path:
    snap = hub_env.hub_cache_dir() / ("models--" + repo_id.replace("/", "--")) / "snapshots" / ("a" * 40)
    shutil.copytree(src, snap)
    return snap


@pytest.mark.parametrize("name, text, words", [
    ("config.json", '{"architectures": ["LlamaForCausalLM"', "config.json in "),
    ("config.json", "[1, 2]", "is not a JSON object"),
    ("config.json", "\xff\xfe", "cannot be used"),
    ("model.safetensors.index.json", "{not json", "model.safetensors.index.json in "),
    ("model.safetensors.index.json", '{"weight_map": ["a"]}', "has no weight_map object"),
    ("model.safetensors.index.json", '{"weight_map": {"t": "../../../x.safetensors"}}',
     "Refused the shard name '../../../x.safetensors'"),
])
def test_a_malformed_json_file_in_the_hf_cache_is_named_and_the_scan_goes_on(tiny_llama, name, text, words):
    bad = hf_snapshot("org/bad", tiny_llama.path)
    (bad / name).write_bytes(text.encode("latin-1"))
    hf_snapshot("org/good", tiny_llama.path)
    problems: list[str] = []
    entries = {e.name: e for e in library.scan(problems)}
    assert entries["org/good"].usable and entries["org/good"].kind == "checkpoint"
    assert not entries["org/bad"].usable and words in entries["org/bad"].problem
    assert len(problems) == 1 and words in problems[0]
    if name != "config.json" or not text.startswith("{"):
        return   # the command is run once, for the first case
    out = subprocess.run([sys.executable, "main.py", "models"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ))
    assert out.returncode == 0 and "Traceback" not in out.stderr
    assert "warning: " in out.stderr and words in out.stderr
    assert any(line.startswith("org/bad") and "refused" in line for line in out.stdout.splitlines())
    assert any(line.startswith("org/good") and "checkpoint" in line for line in out.stdout.splitlines())


@pytest.mark.parametrize("text", ["{not json", "[]", '{"folders": "abc", "meta": [], "provenance": 3}',
                                  '{"folders": [1, null, ""], "meta": {"k": 1}}', "[" * 100_000])
def test_a_malformed_library_index_is_named_kept_aside_and_the_scan_goes_on(text):
    from tests.fixtures.hub_server import write_llama3_gguf

    folder = data_paths().models.parent / "user-models"
    folder.mkdir(parents=True)
    write_llama3_gguf(folder / "tiny-Q8_0.gguf", tensor_bytes=4096)
    index = data_paths().library_file
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(text)
    problems: list[str] = []
    assert library.scan(problems) == []
    assert problems and all(p.startswith(f"The library index {index} ") for p in problems), problems
    if text in ("{not json", "[" * 100_000):
        assert index.with_name(index.name + ".bad").read_text() == text   # kept, never deleted
    library.add_folder(folder)
    (entry,) = library.scan()
    assert entry.usable and entry.name == "tiny-Q8_0.gguf"
