"""Secrets at rest: the Hugging Face token and remote servers' API keys.

A secret goes to the operating system's keyring when there is a usable one (macOS
Keychain, Windows Credential Locker, the Secret Service on Linux, through the
``keyring`` package). Without one, it goes to ``secrets.json`` in the config folder,
a file only the user can read: it is written atomically through a temporary file
that is created ``0600`` (``common.atomic``), so it is never readable by others, not
even for a moment, and a file found wider than that is narrowed before it is read.

Names: ``hf-token`` for the Hugging Face token, ``remote:<server name>`` for a
remote server's API key. Nothing here logs or shows a secret's value.
"""
from __future__ import annotations

import json
import logging
import os
import stat
import threading
from pathlib import Path
from typing import Optional

SERVICE = "LlamaDesk"
HF_TOKEN = "hf-token"
FILE_NAME = "secrets.json"

log = logging.getLogger(__name__)
_lock = threading.Lock()


def remote_key_name(server_name: str) -> str:
    return f"remote:{server_name}"


def _keyring():
    """The keyring module when a real keyring backend is usable, else None."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - a broken keyring set-up is the same as none
        return None
    if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 1) <= 0:
        return None
    if type(backend).__module__.startswith("keyring.backends.null"):
        return None
    return keyring


def where() -> str:
    """Where secrets go now, in words for the settings window."""
    kr = _keyring()
    if kr is not None:
        return "the system keyring"
    return f"a file only you can read ({_file_path()})"


def _file_path() -> Path:
    from common.paths import data_paths

    return data_paths().config / FILE_NAME


def _read_file() -> dict:
    path = _file_path()
    try:
        st = path.stat()
    except FileNotFoundError:
        return {}
    except OSError:
        return {}
    if os.name == "posix" and st.st_mode & 0o077:
        try:
            os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)   # someone widened it: narrow it again
        except OSError:
            pass
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("the secrets file %s cannot be read; it is ignored", path)
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(data, dict) else {}


def _write_file(data: dict) -> None:
    from common.atomic import atomic_write_text

    path = _file_path()
    if not data:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True), mode=0o600)


def get_secret(name: str) -> Optional[str]:
    """The secret called ``name``, from the keyring or the private file; None if there is none."""
    kr = _keyring()
    if kr is not None:
        try:
            value = kr.get_password(SERVICE, name)
        except Exception:  # noqa: BLE001 - a locked or broken keyring: try the file
            log.warning("the system keyring could not be read for %s", name)
            value = None
        if value:
            return value
    with _lock:
        return _read_file().get(name) or None


def set_secret(name: str, value: str) -> str:
    """Store a secret; returns where it went ("keyring" or "file"). An empty value deletes it."""
    if not value:
        delete_secret(name)
        return "none"
    kr = _keyring()
    if kr is not None:
        try:
            kr.set_password(SERVICE, name, value)
        except Exception:  # noqa: BLE001 - fall back to the private file
            log.warning("the system keyring refused %s; keeping it in the private file", name)
        else:
            with _lock:
                data = _read_file()
                if data.pop(name, None) is not None:
                    _write_file(data)
            return "keyring"
    with _lock:
        data = _read_file()
        data[name] = value
        _write_file(data)
    return "file"


def delete_secret(name: str) -> None:
    kr = _keyring()
    if kr is not None:
        try:
            kr.delete_password(SERVICE, name)
        except Exception:  # noqa: BLE001 - not there, or no keyring: nothing to delete
            pass
    with _lock:
        data = _read_file()
        if data.pop(name, None) is not None:
            _write_file(data)
