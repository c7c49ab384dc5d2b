from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common.paths import data_paths
from common.version import __version__

ROOT = Path(__file__).resolve().parents[1]


def run_main(*args, env=None):
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True,
                          text=True, env=env)


def test_help_lists_the_registered_commands():
    from cli.parser import COMMANDS

    out = run_main("--help")
    assert out.returncode == 0
    for cmd in COMMANDS:
        assert cmd.name in out.stdout


def test_version():
    out = run_main("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"LlamaDesk {__version__}"


def test_llamadesk_home_moves_every_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LLAMADESK_HOME", str(tmp_path))
    p = data_paths()
    for folder in (p.models, p.data, p.config, p.logs, p.chats_db, p.settings_file):
        assert tmp_path in folder.parents


def test_default_folders_are_per_user(monkeypatch):
    monkeypatch.delenv("LLAMADESK_HOME", raising=False)
    p = data_paths()
    assert Path.home() in p.data.parents and "LlamaDesk" in str(p.data)
