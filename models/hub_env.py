"""Hugging Face settings resolved at call time, not at import time.

huggingface_hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE once, when it is first
imported. LlamaDesk resolves them on every call and passes them explicitly, so a
changed environment (a test's stand-in server, a user switching to a mirror) is
honoured without restarting.
"""
from __future__ import annotations

import os
from pathlib import Path

from common.errors import UserError

DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "on", "yes", "true"}


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in _TRUE


def hf_home() -> Path:
    home = os.environ.get("HF_HOME")
    if home:
        return Path(os.path.expandvars(home)).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "huggingface"


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps repos (``models--org--name/blobs|snapshots|refs``)."""
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    return Path(os.path.expandvars(cache)).expanduser() if cache else hf_home() / "hub"


def token_path() -> Path:
    """The file where huggingface_hub saves the login token."""
    path = os.environ.get("HF_TOKEN_PATH")
    return Path(os.path.expandvars(path)).expanduser() if path else hf_home() / "token"


def repo_url(repo_id: str) -> str:
    return f"{endpoint()}/{repo_id}"


class OfflineError(UserError, RuntimeError):
    """The Hub was needed while HF_HUB_OFFLINE is set."""

    def __init__(self, what: str = "this"):
        super().__init__(f"Offline mode (HF_HUB_OFFLINE=1): {what} needs the Hugging Face Hub. "
                         "Only models already on disk are available.")
