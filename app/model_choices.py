"""Which models the picker offers: the library (when present), the models folder, the demo model."""
from __future__ import annotations

from pathlib import Path

from common.paths import data_paths
from models.bundled import bundled_model_path


def models_folder(settings) -> Path:
    return Path(settings.models_dir).expanduser() if settings.models_dir else data_paths().models


def available_models(settings) -> list[str]:
    found: list[str] = []
    folder = models_folder(settings)
    if folder.is_dir():
        found += sorted(str(p) for p in folder.rglob("*.gguf") if p.is_file() and ".partial" not in p.name)
    demo = bundled_model_path()
    if demo is not None and str(demo) not in found:
        found.append(str(demo))
    return found
