"""The core packages never import Qt (docs/architecture.md: enforced, not hoped)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE_PACKAGES = ("models", "converters", "engine", "chat", "common", "cli", "server")
QT_MODULES = ("PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "shiboken2", "qtpy")


def qt_imports_in(path: Path) -> list[str]:
    """Module names of Qt bindings that a source file imports, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", ""))
              in ("import_module", "__import__") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names = [node.args[0].value]
        found += [n for n in names if n.split(".")[0] in QT_MODULES]
    return found


def offenders(root: Path) -> list[str]:
    bad = []
    for pkg in CORE_PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            for name in qt_imports_in(path):
                bad.append(f"{path.relative_to(root)} imports {name}")
    return bad


def test_no_module_outside_app_imports_qt():
    bad = offenders(ROOT)
    assert not bad, "Qt imported outside app/: " + "; ".join(bad)


def test_check_catches_a_planted_import(tmp_path):
    for pkg in CORE_PACKAGES:
        (tmp_path / pkg).mkdir()
    (tmp_path / "engine" / "planted.py").write_text("def f():\n    import PySide6.QtCore\n")
    (tmp_path / "chat" / "planted2.py").write_text("from PyQt6 import QtWidgets\n")
    bad = sorted(offenders(tmp_path))
    assert bad == ["chat/planted2.py imports PyQt6", "engine/planted.py imports PySide6.QtCore"]


def test_importing_every_core_module_loads_no_qt():
    modules = []
    for pkg in CORE_PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            mod = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules.append(mod.removesuffix(".__init__"))
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            f"bad = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"Qt loaded by core modules: {out.stdout}"
