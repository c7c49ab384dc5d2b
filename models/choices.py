"""Which models a front end can offer, and how one is named in the settings.

One rule for the window, the CLI and the local server: the models folder is the one
chosen in Settings (``models_dir``), else the default data folder; a remote server's
model is referred to as ``remote:<server name>`` (``Settings.active_model``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

REMOTE_PREFIX = "remote:"


def models_folder(settings) -> Path:
    """The folder models are downloaded and converted into, and looked up in by name."""
    from common.paths import data_paths

    return Path(settings.models_dir).expanduser() if settings.models_dir else data_paths().models


def available_models(settings) -> list[str]:
    """The GGUF files in the models folder (sorted), then the demo model."""
    from models.bundled import bundled_model_path

    found: list[str] = []
    folder = models_folder(settings)
    if folder.is_dir():
        found += sorted(str(p) for p in folder.rglob("*.gguf") if p.is_file() and ".partial" not in p.name)
    demo = bundled_model_path()
    if demo is not None and str(demo) not in found:
        found.append(str(demo))
    return found


def remote_ref(server_name: str) -> str:
    """The reference to a remote server's model, as the settings keep it."""
    return REMOTE_PREFIX + server_name


def remote_name(ref: str) -> Optional[str]:
    """The server name in a remote reference; None when ``ref`` is a local model."""
    return ref[len(REMOTE_PREFIX):] if ref.startswith(REMOTE_PREFIX) else None


def find_remote(settings, ref: str):
    """The RemoteServer a remote reference names, or None (a local model, or a server since removed)."""
    name = remote_name(ref)
    if name is None:
        return None
    return next((s for s in settings.remote_servers if s.name == name), None)


def display_name(ref: str) -> str:
    """What a picker shows while the model loads: the server name, or the file's stem."""
    name = remote_name(ref)
    return name if name is not None else Path(ref).stem
