"""User settings: a plain model with validation and JSON persistence.

The settings file lives at ``data_paths().settings_file``. Loading never fails:
a missing file gives the defaults, and a value that does not validate (hand-edited
file, older version) falls back to its default while the rest is kept;
``load_settings_checked`` also says which values those were. A file that cannot be
read at all (not JSON, binary junk) is first kept aside as
``settings.json.unreadable-<time>`` so that nothing written later can lose it. Forms
call ``validate_field`` to refuse bad values before they reach the model.

The window, the CLI and the local server all read this one file. Sampling is one
``GenerationParams`` (``Settings.params``, the engine's own type) and model loading one
``LoadOptions`` (``Settings.load``), both from ``common.inference_options``; files written
before that nesting (those values at the top level) load unchanged and are written in
the nested layout on the next save.

Remote servers' API keys are not in this file: they are secrets, kept by
``common.secret_store`` (the system keyring, or a file only the user can read), and read
from there only when a server's ``api_key`` is first asked for, so loading the settings
never opens the keyring. A key found in an older settings file is moved there and taken
out of the file.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Optional

from common.inference_options import GenerationParams, LoadOptions

THEMES = ("system", "light", "dark")
# The local API's port (`serve`, and the window's switch): none of the peers' (GPT4All 4891,
# LM Studio 1234, Ollama 11434, llama_cpp.server 8000, llama-server 8080, Jan 1337, KoboldCpp 5001).
DEFAULT_SERVE_PORT = 7453
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# name -> sampling values; "Custom" is whatever does not match a preset.
SAMPLING_PRESETS: dict[str, dict[str, float]] = {
    "Precise": {"temperature": 0.2, "top_p": 0.9, "top_k": 20, "min_p": 0.05, "repeat_penalty": 1.1},
    "Balanced": {"temperature": 0.7, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1},
    "Creative": {"temperature": 1.0, "top_p": 0.98, "top_k": 100, "min_p": 0.02, "repeat_penalty": 1.05},
}


class RemoteServer:
    """An OpenAI-compatible server the user added (llama.cpp server, vLLM, ...).

    Its API key is a secret kept by ``common.secret_store``: it is read from there the
    first time ``api_key`` is asked for, not when the settings are loaded, so reading
    the settings never touches the system keyring.
    """

    def __init__(self, name: str, base_url: str, api_key: Optional[str] = None, model: str = ""):
        self.name, self.base_url, self.model = name, base_url, model
        self._key = api_key            # None: not read from the secret store yet

    @property
    def api_key(self) -> str:
        if self._key is None:
            from common import secret_store

            self._key = secret_store.get_secret(secret_store.remote_key_name(self.name)) or ""
        return self._key

    @api_key.setter
    def api_key(self, value: str) -> None:
        self._key = value

    @property
    def key_known(self) -> bool:
        """Whether the key was read or set (so saving has a key to store)."""
        return self._key is not None

    def to_dict(self) -> dict:
        """What the settings file keeps: never the key."""
        return {"name": self.name, "base_url": self.base_url, "model": self.model}

    def __eq__(self, other) -> bool:
        return isinstance(other, RemoteServer) and (self.to_dict(), self.api_key) == (other.to_dict(), other.api_key)

    def __repr__(self) -> str:
        return f"RemoteServer(name={self.name!r}, base_url={self.base_url!r}, model={self.model!r})"


# The fields of the two nested values, as the settings file names them inside
# "params" and "load"; files written before version 2 kept them at the top level.
_PARAM_FIELDS = tuple(f.name for f in fields(GenerationParams))
_LOAD_FIELDS = tuple(f.name for f in fields(LoadOptions))
SETTINGS_VERSION = 2


@dataclass
class Settings:
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    params: GenerationParams = field(default_factory=GenerationParams)   # sampling, every reply
    load: LoadOptions = field(default_factory=LoadOptions)               # how a model is loaded
    models_dir: str = ""                # "": the default models folder
    theme: str = "system"
    active_model: str = ""              # a GGUF path, or a remote reference (models.model_ref)
    remote_servers: list[RemoteServer] = field(default_factory=list)
    welcome_done: bool = False          # the "New here?" banner was dismissed, or a first chat happened
    serve_on: bool = False              # the window serves its model on localhost (API for other programs)
    serve_port: int = DEFAULT_SERVE_PORT
    # Disk for each conversation's saved KV cache (reopening is instant); 0 turns saving off.
    # Default and why: engine.snapshots.DEFAULT_DISK_BUDGET_MB.
    kv_cache_mb: int = 4096

    # conversions ------------------------------------------------------------
    def preset_name(self) -> str:
        for name, values in SAMPLING_PRESETS.items():
            if all(abs(float(getattr(self.params, k)) - v) < 1e-9 for k, v in values.items()):
                return name
        return "Custom"

    def with_preset(self, name: str) -> "Settings":
        return replace(self, params=replace(self.params, **SAMPLING_PRESETS[name]))

    def to_dict(self) -> dict:
        """The settings file's content (no API keys)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["params"] = self.params.to_dict()
        data["load"] = self.load.to_dict()
        data["remote_servers"] = [s.to_dict() for s in self.remote_servers]
        data["version"] = SETTINGS_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict, problems: Optional[list[str]] = None) -> "Settings":
        """Build settings from stored data, keeping each valid value and defaulting the rest.

        Reads both today's layout and the flat one of files written before version 2
        (sampling and load values at the top level). Each value that was replaced by
        its default is described in ``problems``.
        """
        out = cls()
        problems = [] if problems is None else problems
        if not isinstance(data, dict):
            problems.append("the settings are not a JSON object: using the defaults")
            return out
        data = _migrated(data)
        for target, names, source in ((out.params, _PARAM_FIELDS, data.get("params")),
                                      (out.load, _LOAD_FIELDS, data.get("load"))):
            if source is None:
                continue
            if not isinstance(source, dict):
                problems.append(f"{'params' if target is out.params else 'load'} is not an object: "
                                "using the defaults")
                continue
            for name in names:
                if name in source:
                    _take(target, name, source[name], problems)
        for f in fields(cls):
            if f.name not in data or f.name in ("params", "load"):
                continue
            value = data[f.name]
            if f.name == "remote_servers":
                value = _servers_from(value, problems)
                if value is None:
                    problems.append("remote servers: not a list, none are kept")
                    continue
                out.remote_servers = value
            else:
                _take(out, f.name, value, problems)
        return out

    def errors(self) -> dict[str, str]:
        """Every invalid field with the message to show next to it."""
        found = {}
        for owner in (self, self.params, self.load):
            for f in fields(owner):
                if f.name in ("remote_servers", "params", "load"):
                    continue
                msg = validate_field(f.name, getattr(owner, f.name))
                if msg:
                    found[f.name] = msg
        for s in self.remote_servers:
            msg = validate_server(s)
            if msg:
                found["remote_servers"] = msg
                break
        return found


def _migrated(data: dict) -> dict:
    """Files before version 2 kept the sampling and load values at the top level."""
    if not any(k in data for k in (*_PARAM_FIELDS, *_LOAD_FIELDS)):
        return data
    data = dict(data)
    for key, names in (("params", _PARAM_FIELDS), ("load", _LOAD_FIELDS)):
        nested = dict(data[key]) if isinstance(data.get(key), dict) else {}
        for name in names:
            if name in data:
                nested.setdefault(name, data.pop(name))
        data[key] = nested
    return data


def _take(target: Any, name: str, value: Any, problems: list[str]) -> None:
    msg = validate_field(name, value)
    if msg is not None:
        default = getattr(target, name)
        problems.append(f"{name} = {_shown(value)} is not valid ({msg.rstrip('.')}): "
                        f"using the default, {_shown(default)}")
        return
    setattr(target, name, _coerce(name, value))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def _is_int(v: Any) -> bool:
    return _is_number(v) and float(v).is_integer()


_RANGES = {
    # name: (low, high, integer?, message)
    "temperature": (0.0, 2.0, False, "Temperature must be between 0 and 2."),
    "top_p": (0.0, 1.0, False, "Top-p must be between 0 and 1."),
    "top_k": (0, 1000, True, "Top-k must be a whole number from 0 (off) to 1000."),
    "min_p": (0.0, 1.0, False, "Min-p must be between 0 and 1."),
    "repeat_penalty": (0.5, 2.0, False, "Repeat penalty must be between 0.5 and 2."),
    "max_tokens": (1, 131072, True, "Max reply tokens must be a whole number from 1 to 131,072."),
    "n_ctx": (256, 1048576, True, "Context size must be a whole number from 256 to 1,048,576 tokens."),
    "threads": (0, 1024, True, "Threads must be 0 (automatic) or a whole number up to 1024."),
    "repeat_last_n": (-1, 1048576, True, "Repeat window must be a whole number of tokens (-1: the whole context)."),
    "frequency_penalty": (-2.0, 2.0, False, "Frequency penalty must be between -2 and 2."),
    "presence_penalty": (-2.0, 2.0, False, "Presence penalty must be between -2 and 2."),
    "serve_port": (0, 65535, True, "The port must be a whole number from 1 to 65535 (0: any free port)."),
    "kv_cache_mb": (0, 10_000_000, True, "The conversation cache size must be a whole number of MB (0: off)."),
}


def validate_field(name: str, value: Any) -> Optional[str]:
    """None when ``value`` is acceptable for ``name``, else the message to show."""
    if name in _RANGES:
        lo, hi, integer, msg = _RANGES[name]
        ok = (_is_int(value) if integer else _is_number(value)) and lo <= value <= hi
        return None if ok else msg
    if name == "seed":
        if value is None or (_is_int(value) and 0 <= value < 2**32):
            return None
        return "Seed must be empty (random) or a whole number from 0 to 4,294,967,295."
    if name == "gpu_layers":
        if value == "auto" or (isinstance(value, str) and value.isdigit() and int(value) <= 10000):
            return None
        if _is_int(value) and 0 <= value <= 10000:
            return None
        return "GPU layers must be \"auto\" or a whole number of layers (0 = CPU only)."
    if name == "stop":
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value):
            return None
        return "Stop strings must be a list of texts."
    if name == "theme":
        return None if value in THEMES else "Theme must be system, light or dark."
    if name == "models_dir":
        if not isinstance(value, str):
            return "The models folder must be a path."
        if value and not Path(value).expanduser().is_absolute():
            return "The models folder must be an absolute path."
        if value and Path(value).expanduser().exists() and not Path(value).expanduser().is_dir():
            return "The models folder path points at a file, not a folder."
        return None
    if name in ("welcome_done", "serve_on"):
        return None if isinstance(value, bool) else f"{name} must be true or false."
    if name in ("system_prompt", "active_model"):
        return None if isinstance(value, str) else f"{name} must be text."
    return None


def validate_server(server: RemoteServer) -> Optional[str]:
    if not server.name.strip():
        return "A remote server needs a name."
    if not server.base_url.startswith(("http://", "https://")):
        return f"The address of {server.name!r} must start with http:// or https://."
    return None


def _coerce(name: str, value: Any) -> Any:
    if name == "gpu_layers":
        return "auto" if value == "auto" else int(value)
    if name == "stop":
        return tuple(value)
    if name in _RANGES:
        return int(value) if _RANGES[name][2] else float(value)
    if name == "seed" and value is not None:
        return int(value)
    return value


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _servers_from(value: Any, problems: Optional[list[str]] = None) -> Optional[list[RemoteServer]]:
    if not isinstance(value, list):
        return None
    problems = [] if problems is None else problems
    servers = []
    for n, item in enumerate(value, 1):
        if not isinstance(item, dict):
            problems.append(f"remote server {n} is not an object: left out")
            continue
        try:
            s = RemoteServer(**{k: str(item[k]) for k in ("name", "base_url", "api_key", "model") if k in item})
            if item.get("api_key") in ("", None):
                s.api_key = None       # no key in the file: read from the secret store when needed
        except TypeError:
            problems.append(f"remote server {n} has no name or address: left out")
            continue
        msg = validate_server(s)
        if msg is None:
            servers.append(s)
        else:
            problems.append(f"remote server {n}: {msg.rstrip('.')}: left out")
    return servers


@dataclass
class LoadedSettings:
    """Settings as loaded, with what had to be fixed on the way, in words for the user."""

    settings: Settings
    problems: list[str] = field(default_factory=list)
    backup: Optional[Path] = None      # where an unreadable file was kept


def load_settings(path: Optional[Path] = None) -> Settings:
    return load_settings_checked(path).settings


def load_settings_checked(path: Optional[Path] = None) -> LoadedSettings:
    """Load the settings; never fails. Keeps an unreadable file aside before anything is written."""
    from common.paths import data_paths

    path = Path(path) if path else data_paths().settings_file
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return LoadedSettings(Settings())
    except OSError as exc:
        return LoadedSettings(Settings(), [f"the settings file {path} cannot be read "
                                           f"({exc.strerror}): using the defaults"])
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except ValueError:
        backup = _keep_aside(path)
        kept = f"it was kept as {backup.name}" if backup else "it could not be kept aside"
        return LoadedSettings(Settings(), [f"the settings file could not be read ({kept}): "
                                           "using the defaults"], backup)
    problems: list[str] = []
    settings = Settings.from_dict(data, problems)
    _move_legacy_keys(settings, data, path)
    return LoadedSettings(settings, problems)


def _keep_aside(path: Path) -> Optional[Path]:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.unreadable-{stamp}")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.unreadable-{stamp}-{n}")
    try:
        os.replace(path, backup)
        return backup
    except OSError:
        return None


def _move_legacy_keys(settings: Settings, data: dict, path: Path) -> None:
    """Keys left in a file by an older version go to the secret store and out of the file.

    Only then is the secret store touched while loading; other keys are read when a
    server's ``api_key`` is first asked for.
    """
    legacy = [s for s in settings.remote_servers if s.key_known]
    if not legacy:
        return
    from common import secret_store

    for server in legacy:
        secret_store.set_secret(secret_store.remote_key_name(server.name), server.api_key)
    try:
        _write(settings, path)       # the file without the keys
    except (OSError, ValueError):
        pass


def save_settings(settings: Settings, path: Optional[Path] = None) -> Path:
    """Write atomically (a crash never leaves half a file); refuses invalid settings.

    API keys go to the secret store, not into the file; keys of servers that were
    removed are deleted from it.
    """
    from common import secret_store
    from common.paths import data_paths

    bad = settings.errors()
    if bad:
        raise ValueError("; ".join(bad.values()))
    path = Path(path) if path else data_paths().settings_file
    before = _stored_server_names(path)
    for server in settings.remote_servers:
        if server.key_known:        # a key never read is unchanged in the store
            secret_store.set_secret(secret_store.remote_key_name(server.name), server.api_key)
    for name in before - {s.name for s in settings.remote_servers}:
        secret_store.delete_secret(secret_store.remote_key_name(name))
    return _write(settings, path)


def _stored_server_names(path: Path) -> set[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(s["name"]) for s in data.get("remote_servers", []) if isinstance(s, dict) and "name" in s}
    except (OSError, ValueError, AttributeError, TypeError):
        return set()


def _write(settings: Settings, path: Path) -> Path:
    from common.atomic import atomic_write_text

    data = settings.to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True))
