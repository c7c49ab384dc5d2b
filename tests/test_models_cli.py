"""`llamadesk models` lists what the window's library lists, the demo model included."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from common.paths import data_paths

ROOT = Path(__file__).resolve().parents[1]


def llamadesk(*args):
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_models_lists_the_demo_model_and_paths_keep_the_columns(smollm2_path, tiny_gguf_factory):
    folder = data_paths().models / "someone" / "a-repo-with-a-rather-long-name-GGUF"
    folder.mkdir(parents=True)
    mine = folder / "tiny.F16.gguf"
    shutil.copyfile(tiny_gguf_factory("plain", "f16"), mine)

    table = llamadesk("models")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    demo = next(r for r in rows if r.startswith(smollm2_path.name))
    assert demo.endswith("demo (chat --model smollm2)") and "Q4_1" in demo

    listed = llamadesk("models", "--paths")
    assert listed.returncode == 0, listed.stderr
    header, *lines = listed.stdout.splitlines()
    source_col = header.index("source")
    rows = {line.split()[0]: (line, path) for line, path in zip(lines[::2], lines[1::2])}
    assert set(rows) == {mine.name, smollm2_path.name}
    for name, (line, path_line) in rows.items():
        assert line[source_col - 2:source_col] == "  " and line[source_col] != " "   # columns kept
        assert path_line.startswith("    ") and Path(path_line.strip()).name == name
    assert rows[mine.name][1].strip() == str(mine)
    assert rows[smollm2_path.name][1].strip() == str(smollm2_path)

    # the name `models` shows opens the demo model too
    from cli.chat_cmd import resolve_model

    assert resolve_model(smollm2_path.name) == smollm2_path == resolve_model("smollm2")


def test_chat_help_names_the_demo_alias():
    out = llamadesk("chat", "--help")
    assert out.returncode == 0 and "smollm2 for the demo model" in " ".join(out.stdout.split())
