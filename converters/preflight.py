"""Checks made before a conversion writes anything: output folder and disk space."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from common.task import format_bytes
from converters.errors import ConversionError, OutputExists

MIN_RESERVE = 16 * 1000 * 1000


def free_bytes(folder: Path) -> int:
    """Free space where ``folder`` lives (the one query tests replace to simulate a full disk)."""
    return shutil.disk_usage(folder).free


def check_output_folder(out_path: Path, *, replace: bool = True, make_folder: bool = True) -> None:
    """The output is a ``.gguf`` file name in a writable folder. ``replace`` False refuses an
    existing file (``OutputExists``); ``make_folder`` False refuses a missing folder."""
    folder = out_path.parent
    if out_path.is_dir():
        raise ConversionError(f"{out_path} is a folder; give a file name ending in .gguf for the output.")
    if out_path.suffix.lower() != ".gguf":
        suggestion = out_path.with_suffix(".gguf").name if out_path.suffix else f"{out_path.name}.gguf"
        raise ConversionError(f"The output's name must end in .gguf ({out_path.name} does not): "
                              f"for example {suggestion}.")
    if out_path.exists() and not replace:
        raise OutputExists(out_path)
    blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ConversionError(f"Cannot write the output to {folder}: {blocker} is a file, not a folder.")
    if not folder.exists() and not make_folder:
        raise ConversionError(f"The folder {folder} does not exist: create it first, or choose another.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".llamadesk-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConversionError(f"Cannot write the output to {folder}: {e.strerror or e}.") from None


def check_disk_space(folder: Path, output_bytes: int, intermediate_bytes: int = 0) -> None:
    reserve = max(MIN_RESERVE, (output_bytes + intermediate_bytes) // 100)
    need = output_bytes + intermediate_bytes + reserve
    free = free_bytes(folder)
    if free < need:
        mid = f"{format_bytes(intermediate_bytes)} for the intermediate file, " if intermediate_bytes else ""
        parts = f" ({mid}{format_bytes(output_bytes)} for the output and {format_bytes(reserve)} to spare)"
        raise ConversionError(
            f"Not enough disk space in {folder}: converting needs {format_bytes(need)}{parts} "
            f"but only {format_bytes(free)} is free.")
