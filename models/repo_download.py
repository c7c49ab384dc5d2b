"""Download several files of one repo: plan, check space for all of them, then fetch each.

``plan_download`` lists the repo, keeps the files matching ``include`` patterns
(fnmatch, e.g. ``"*Q4_K_M*.gguf"``) and asks the Hub for each file's metadata;
``download_repo`` refuses the whole request up front when it does not fit on disk.
"""
from __future__ import annotations

import dataclasses
import fnmatch
from pathlib import Path
from typing import Callable, Iterable, Optional

from common.task import TaskHandle
from models import hub
from models.file_download import (FreeSpace, RemoteFile, RetryPolicy, check_disk_space, default_free_space,
                          download_file, final_path, partial_size, resolve_remote)

# Never fetched unless asked for by name: pickles (unsafe to load) and Meta's consolidated copy.
SKIPPED_BY_DEFAULT = ("original/*", "*.bin", "*.pth", "*.pt", "*.msgpack", "*.h5", ".gitattributes")


def select_files(paths: Iterable[str], include: Optional[list[str]] = None) -> list[str]:
    paths = list(paths)
    if include:
        return [p for p in paths if any(fnmatch.fnmatch(p, pat) for pat in include)]
    return [p for p in paths if not any(fnmatch.fnmatch(p, pat) for pat in SKIPPED_BY_DEFAULT)]


def plan_download(repo_id: str, include: Optional[list[str]] = None, revision: Optional[str] = None,
                  *, token: Optional[str] = None) -> list[RemoteFile]:
    listing = hub.list_repo(repo_id, revision, token=token)
    chosen = select_files([f.path for f in listing.files], include)
    if not chosen:
        raise ValueError(f"No file of {repo_id} matches {include}.")
    # Pin the commit the listing saw, so every file comes from the same revision.
    asked = revision or "main"
    return [dataclasses.replace(resolve_remote(repo_id, name, listing.revision, token=token), revision=asked)
            for name in chosen]


def bytes_still_needed(remotes: list[RemoteFile], models_dir: Optional[Path] = None) -> list[tuple[Path, int]]:
    out = []
    for r in remotes:
        final = final_path(r, models_dir)
        have = r.size if final.exists() else partial_size(r, models_dir)
        out.append((final, r.size - have))
    return out


def download_repo(repo_id: str, include: Optional[list[str]] = None, revision: Optional[str] = None, *,
                  models_dir: Optional[Path] = None, token: Optional[str] = None,
                  retry: RetryPolicy = RetryPolicy(), free_space: FreeSpace = default_free_space,
                  handle_for: Optional[Callable[[RemoteFile], TaskHandle]] = None) -> dict[str, Path]:
    """Download the chosen files one after another; returns {path in repo: local path}."""
    remotes = plan_download(repo_id, include, revision, token=token)
    check_disk_space(bytes_still_needed(remotes, models_dir), free_space)
    out = {}
    for r in remotes:
        handle = handle_for(r) if handle_for else TaskHandle()
        out[r.filename] = download_file(repo_id, r.filename, revision=r.revision, handle=handle,
                                        models_dir=models_dir, token=token, retry=retry,
                                        free_space=free_space, remote=r)
    return out
