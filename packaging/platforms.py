"""Everything about the bundle that differs between Linux, macOS and Windows, in one place.

Used by the spec (``llamadesk.spec``), by ``make_archive.py`` and by ``dist_test.py``;
the CI workflow (``.github/workflows/bundle.yml``) only runs those.
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

APP_NAME = "LlamaDesk"
FOLDER = "LlamaDesk"            # dist/LlamaDesk/ (and LlamaDesk.app on macOS)
BUNDLE_ID = "org.llamadesk.LlamaDesk"
DESKTOP_ID = "llamadesk"        # llamadesk.desktop, the icon's name


@dataclass(frozen=True)
class Platform:
    name: str                        # linux | macos | windows
    executables: tuple               # (file name without suffix, console?) ...; the first is the window
    cli_executable: str              # the one that prints to a terminal
    library_patterns: tuple          # llama_cpp/lib files to collect (shell-style)
    icon_suffix: Optional[str]       # what the EXE/BUNDLE takes; None: no icon on the executable
    archive_format: str              # shutil.make_archive's format
    strip: bool = False
    app_bundle: bool = False
    kept_environment: tuple = ()     # variables a clean start still needs (Windows cannot start without some)
    strip_debug: tuple = ()          # binaries (name patterns) whose debug information is left out

    def icon(self, root: Path) -> Optional[str]:
        if self.icon_suffix is None:
            return None
        path = root / "build" / "icons" / f"{DESKTOP_ID}{self.icon_suffix}"
        return str(path) if path.is_file() else None

    def program(self, folder: Path, window: bool = False) -> Path:
        """The program that runs the CLI (or the window), inside an unpacked bundle folder."""
        exe = (self.executables[0][0] if window else self.cli_executable) + (".exe" if self.name == "windows" else "")
        if self.app_bundle:
            return folder / f"{APP_NAME}.app" / "Contents" / "MacOS" / exe
        return folder / exe

    def archive_name(self, version: str) -> str:
        machine = {"amd64": "x86_64", "aarch64": "arm64"}.get(platform.machine().lower(),
                                                             platform.machine().lower())
        return f"{APP_NAME}-{version}-{self.name}-{machine}"


# Linux: the Python library's debug information is left out (22 MiB -> 5.5 MiB). Nothing
# else is stripped: wheels' libraries rewritten by auditwheel (numpy's OpenBLAS) break
# when stripped ("Importing the numpy C-extensions failed"), and on macOS stripping
# would break code signatures.
LINUX = Platform("linux", executables=(("llamadesk", True),), cli_executable="llamadesk",
                 library_patterns=("lib*.so", "lib*.so.[0-9]", "lib*.so.[0-9][0-9]"),
                 icon_suffix=None, archive_format="gztar", strip_debug=("libpython3*.so*",))
# macOS: the .app runs the window from Finder; Contents/MacOS/llamadesk is the CLI in a
# terminal. The Metal shader is either embedded in libggml-metal or a file beside it.
MACOS = Platform("macos", executables=(("llamadesk", False),), cli_executable="llamadesk",
                 library_patterns=("*.dylib", "*.metal", "*.metallib"),
                 icon_suffix=".icns", archive_format="zip", app_bundle=True)
# Windows needs two programs over one folder: a windowed one (no console flashes up
# when it is opened from Explorer) and a console one whose output reaches a terminal.
WINDOWS = Platform("windows", executables=(("LlamaDesk", False), ("llamadesk-cli", True)),
                   cli_executable="llamadesk-cli", library_patterns=("*.dll",),
                   icon_suffix=".ico", archive_format="zip",
                   kept_environment=("SYSTEMROOT", "WINDIR", "TEMP", "TMP", "USERPROFILE", "LOCALAPPDATA", "APPDATA"))


def current() -> Platform:
    if sys.platform.startswith("linux"):
        return LINUX
    if sys.platform == "darwin":
        return MACOS
    if sys.platform == "win32":
        return WINDOWS
    raise SystemExit(f"no bundle recipe for {sys.platform}")


def cuda_runtime_files(platform_: Platform, lib_names: list[str]) -> list[Path]:
    """The CUDA toolkit's runtime libraries a CUDA build of llama.cpp loads, or [].

    Only the toolkit's redistributable libraries (cudart, cuBLAS); the driver's own
    library (libcuda / nvcuda.dll) comes with the user's driver and is never bundled.
    """
    if not any("ggml-cuda" in n for n in lib_names):
        return []
    roots = [os.environ.get(v) for v in ("CUDA_PATH", "CUDA_HOME")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        roots.append(str(Path(nvcc).resolve().parent.parent))
    roots.append("/usr/local/cuda")
    if platform_.name == "windows":
        sub, pattern = ("bin",), re.compile(r"^(cudart|cublas|cublasLt)64_\d+\.dll$", re.I)
    else:
        sub, pattern = ("lib64", "lib", "targets/x86_64-linux/lib", "targets/sbsa-linux/lib"), \
            re.compile(r"^lib(cudart|cublas|cublasLt)\.so\.\d+$")
    for root in filter(None, roots):
        for s in sub:
            folder = Path(root) / s
            found = sorted(p for p in folder.glob("*") if pattern.match(p.name)) if folder.is_dir() else []
            if found:
                return found
    raise SystemExit("this llama.cpp build uses CUDA, but the CUDA runtime libraries "
                     "(cudart, cublas) were not found: set CUDA_PATH")
