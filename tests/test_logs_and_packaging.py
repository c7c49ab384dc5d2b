"""The logs folder that `paths` names exists and receives warnings; the package metadata
installs without deprecation warnings."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_paths_lists_a_logs_folder_that_exists_and_gets_the_warnings(tmp_path):
    env = {**os.environ, "LLAMADESK_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "main.py", "paths"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0
    logs = Path(next(line.split(":", 1)[1].strip() for line in out.stdout.splitlines() if line.startswith("logs:")))
    assert logs.is_dir()
    code = ("import logging, sys; from common.logs import setup_logging; path = setup_logging(); "
            "logging.getLogger('engine.llama_backend').warning('ran out of GPU memory'); print(path)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    log_file = Path(out.stdout.strip())
    assert log_file.parent == logs
    assert "WARNING engine.llama_backend: ran out of GPU memory" in log_file.read_text(encoding="utf-8")


def test_the_licence_is_an_spdx_string_with_a_setuptools_that_reads_it():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["license"] == "MIT"       # a TOML table is deprecated
    setuptools = next(r for r in meta["build-system"]["requires"] if r.startswith("setuptools"))
    assert setuptools.replace(" ", "") == "setuptools>=77"   # the first to read SPDX expressions
