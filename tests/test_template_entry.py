"""A GGUF with a hostile chat template, through the public entry points.

``gguf-new-metadata --chat-template`` (gguf-py) copies the tiny GGUF with a template
that would need gigabytes or minutes. The engine refuses it at load, says why, and
chats with the built-in Llama 3 format; so does ``main.py chat``.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = {
    "memory": "{{ bos_token }}{{ 'x' * 1000000000 }}",
    "time": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "width": "{{ messages[0].content|center(1000000000) }}",
}


def with_template(src: Path, dest: Path, template: str) -> Path:
    tool = Path(sys.executable).with_name("gguf-new-metadata")
    cmd = [str(tool)] if tool.exists() else [shutil.which("gguf-new-metadata") or "gguf-new-metadata"]
    subprocess.run(cmd + ["--chat-template", template, "--force", str(src), str(dest)],
                   check=True, capture_output=True, timeout=120)
    return dest


@pytest.fixture(scope="module")
def hostile_ggufs(tiny_gguf_factory, tmp_path_factory):
    src = tiny_gguf_factory("plain", "f16")
    folder = tmp_path_factory.mktemp("hostile-ggufs")
    return {name: with_template(src, folder / f"{name}.gguf", t) for name, t in HOSTILE.items()}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_engine_refuses_a_hostile_template_and_uses_the_builtin_format(hostile_ggufs, kind):
    from common.task import TaskHandle
    from engine.llama_backend import LlamaCppBackend
    from engine.types import ChatMessage

    backend = LlamaCppBackend(hostile_ggufs[kind], n_ctx=256, n_gpu_layers=0, n_threads=1)
    backend.load(TaskHandle())
    try:
        assert backend.template.is_builtin
        assert any("chat template was refused (the chat template" in note for note in backend.load_notes)
        assert "built-in Llama 3 format" in backend.plan_text
        prompt = backend.template.render([ChatMessage("user", "Hi")])
        assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    finally:
        backend.unload()


def test_chat_cli_chats_with_the_builtin_format_and_says_why(hostile_ggufs):
    r = subprocess.run([sys.executable, "main.py", "chat", "--model", str(hostile_ggufs["memory"]),
                        "--prompt", "Hi", "--max-tokens", "4", "--temperature", "0", "--threads", "1",
                        "--n-ctx", "256"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "chat template was refused" in r.stderr
    assert "repeats a value of about 953.7 MB" in r.stderr
    assert "using the built-in Llama 3 format" in r.stderr
    assert "Traceback" not in r.stderr
