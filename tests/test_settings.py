"""One settings file for the window, the CLI and the server: its layout, the migration of
the file the previous version wrote, flags over it for one run, and no keyring on reading."""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common import inference_options, secret_store
from common.inference_options import DEFAULT_N_CTX, GenerationParams, LoadOptions
from common.paths import data_paths
from common.settings import RemoteServer, Settings, load_settings, load_settings_checked, save_settings

ROOT = Path(__file__).resolve().parents[1]
# A settings file exactly as the version before the nesting of params and load wrote it.
BEFORE = Path(__file__).parent / "fixtures" / "settings_before_nesting.json"


def test_a_settings_file_from_the_previous_version_loads_unchanged(tmp_path):
    path = tmp_path / "settings.json"
    shutil.copyfile(BEFORE, path)
    loaded = load_settings_checked(path)
    assert loaded.problems == []
    s = loaded.settings
    assert s.params == GenerationParams(max_tokens=321, temperature=0.2, top_p=0.9, top_k=20, min_p=0.05,
                                        repeat_penalty=1.1, seed=7)
    assert s.load == LoadOptions(n_ctx=4096, gpu_layers=12, threads=3)
    assert (s.system_prompt, s.models_dir, s.theme, s.active_model) == (
        "Answer briefly.", "/srv/models", "dark", "remote:Lab")
    assert (s.welcome_done, s.serve_on, s.serve_port, s.kv_cache_mb) == (True, True, 7460, 4096)
    assert [(r.name, r.base_url, r.model) for r in s.remote_servers] == [("Lab", "http://127.0.0.1:8080/v1", "llama3")]
    assert path.read_bytes() == BEFORE.read_bytes()      # loading alone does not rewrite it

    save_settings(s, path)                               # the next save writes today's layout
    data = json.loads(path.read_text())
    assert data["params"]["max_tokens"] == 321 and data["load"] == {"n_ctx": 4096, "gpu_layers": 12, "threads": 3}
    assert not {"temperature", "max_tokens", "n_ctx", "threads", "gpu_layers"} & set(data)
    again = load_settings_checked(path)
    assert again.problems == [] and again.settings == s


def test_a_bad_value_in_the_old_layout_falls_back_alone(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"temperature": 9, "top_k": 12, "n_ctx": 2048, "gpu_layers": "x"}))
    loaded = load_settings_checked(path)
    assert (loaded.settings.params.temperature, loaded.settings.params.top_k) == (0.7, 12)
    assert (loaded.settings.load.n_ctx, loaded.settings.load.gpu_layers) == (2048, "auto")
    assert [p.split(" =")[0] for p in loaded.problems] == ["temperature", "gpu_layers"]


def test_one_context_default_and_one_reply_length_default():
    assert Settings().load.n_ctx == LoadOptions().n_ctx == DEFAULT_N_CTX
    assert Settings().params == GenerationParams()     # the window's defaults are the engine's
    assert inference_options.default_n_ctx(2048) == 2048
    assert inference_options.default_n_ctx(None) == inference_options.default_n_ctx(131072) == DEFAULT_N_CTX


@pytest.mark.parametrize("logical, physical, expected", [
    (16, 8, 8),     # hyperthreads: one thread per core
    (8, 8, 7),      # no hyperthreads: every core but one
    (2, 1, 1),
    (1, 1, 1),
    (4, 0, 3),      # cores unknown: every logical CPU but one
])
def test_automatic_threads_are_the_physical_cores_leaving_one_cpu_free(monkeypatch, logical, physical, expected):
    monkeypatch.setattr(inference_options.os, "cpu_count", lambda: logical)
    monkeypatch.setattr(inference_options, "_physical_cores", lambda: physical)
    assert inference_options.default_threads() == expected
    assert LoadOptions(threads=0).engine_threads() == expected
    assert LoadOptions(threads=5).engine_threads() == 5


def test_reading_settings_never_touches_the_secret_store(monkeypatch):
    save_settings(Settings(remote_servers=[RemoteServer("Lab", "https://lab.example/v1", api_key="sk-1")]))
    asked = []

    def get_secret(name):
        asked.append(name)
        return "sk-1"

    monkeypatch.setattr(secret_store, "get_secret", get_secret)
    monkeypatch.setattr(secret_store, "set_secret", lambda *a: pytest.fail("the keyring was written"))
    monkeypatch.setattr(secret_store, "_keyring", lambda: pytest.fail("the keyring was opened"))
    s = load_settings()
    assert asked == [] and s.remote_servers[0].name == "Lab"
    assert s.remote_servers[0].api_key == "sk-1" and asked == [secret_store.remote_key_name("Lab")]


def _chat_args(**given):
    from cli.chat_cmd import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = [x for k, v in given.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    return parser.parse_args(["--model", "m", *flags])


def test_cli_flags_override_the_settings_for_one_run_only():
    from cli.chat_cmd import run_options

    settings = Settings(params=GenerationParams(max_tokens=77, temperature=0.3, seed=5),
                        load=LoadOptions(n_ctx=3072, gpu_layers=4, threads=2))
    save_settings(settings)
    load, params = run_options(_chat_args(), load_settings())
    assert (load, params) == (settings.load, settings.params)
    load, params = run_options(_chat_args(n_ctx=1024, gpu_layers="auto", temperature=0.9), load_settings())
    assert load == LoadOptions(n_ctx=1024, gpu_layers="auto", threads=2)
    assert (params.temperature, params.max_tokens, params.seed) == (0.9, 77, 5)
    assert load_settings() == settings                     # the file is not changed by a flag


def test_models_and_chat_use_the_models_folder_chosen_in_the_window(tmp_path, tiny_gguf_factory):
    chosen = tmp_path / "my models"
    chosen.mkdir()
    mine = chosen / "my-tiny.F16.gguf"
    shutil.copyfile(tiny_gguf_factory("plain", "f16"), mine)
    save_settings(Settings(models_dir=str(chosen)))
    assert not data_paths().models.exists() or mine.name not in {p.name for p in data_paths().models.rglob("*")}

    from cli.chat_cmd import resolve_model

    assert resolve_model("my-tiny") == mine == resolve_model(mine.name)
    out = subprocess.run([sys.executable, "main.py", "models", "--paths"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"    {mine}" in out.stdout.splitlines()
