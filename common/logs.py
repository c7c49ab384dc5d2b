"""The log file: warnings and errors from every part of LlamaDesk, in ``data_paths().logs``."""
from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Optional

from common.paths import data_paths

LOG_FILE = "llamadesk.log"

_handler: Optional[RotatingFileHandler] = None


def setup_logging(level: int = logging.WARNING) -> Optional[Path]:
    """Send log records of ``level`` and above to ``<logs>/llamadesk.log`` (rotated at
    1 MB, three old files kept), creating the logs folder. Each front end calls it at
    start; calling it again follows a changed ``LLAMADESK_HOME``. Returns the file's
    path, or None when the folder cannot be created (logging is then left as it was)."""
    global _handler
    path = data_paths().logs / LOG_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    root = logging.getLogger()
    if _handler is not None:
        if Path(_handler.baseFilename) == path.resolve():
            return path
        root.removeHandler(_handler)
        _handler.close()
    _handler = RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8", delay=True)
    _handler.setLevel(level)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(_handler)
    return path
