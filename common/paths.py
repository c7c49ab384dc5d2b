"""Where LlamaDesk keeps models, chats, settings, logs and its cache.

By default each lives in the OS's per-user folder (via platformdirs). Setting
``LLAMADESK_HOME`` moves all of them under that one folder, which is what the tests
do so they never touch a real user's data. Hugging Face's own variables
(``HF_HOME``, ``HF_TOKEN``, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``) are left to
huggingface_hub and keep their meaning.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "LlamaDesk"
HOME_ENV = "LLAMADESK_HOME"


@dataclass(frozen=True)
class DataPaths:
    models: Path
    data: Path
    config: Path
    logs: Path
    cache: Path       # re-creatable data (saved KV caches of conversations): safe to delete

    @property
    def chats_db(self) -> Path:
        return self.data / "chats.sqlite3"

    @property
    def settings_file(self) -> Path:
        return self.config / "settings.json"

    @property
    def library_file(self) -> Path:
        return self.data / "library.json"

    @property
    def downloads_dir(self) -> Path:
        return self.data / "downloads"

    @property
    def kv_snapshots_dir(self) -> Path:
        return self.cache / "kv"

    def ensure(self) -> "DataPaths":
        for p in (self.models, self.data, self.config, self.logs):
            p.mkdir(parents=True, exist_ok=True)
        return self


def data_paths(env: dict | None = None) -> DataPaths:
    """Resolve the data folders from the environment (not cached: tests change it)."""
    env = os.environ if env is None else env
    home = env.get(HOME_ENV)
    if home:
        root = Path(home).expanduser()
        return DataPaths(models=root / "models", data=root / "data",
                         config=root / "config", logs=root / "logs", cache=root / "cache")
    data = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return DataPaths(
        models=data / "models",
        data=data,
        config=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        logs=Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
        cache=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
    )
