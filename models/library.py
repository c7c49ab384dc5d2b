"""The local model library: every GGUF and convertible checkpoint LlamaDesk can find.

``scan()`` looks in LlamaDesk's models folder, in the Hugging Face cache and in any
folder the user added, and returns ``LibraryEntry`` rows. Every GGUF is validated
(``gguf_validate``) before its header is read (``gguf_info``); a failing file is
listed with the problem and never handed to llama.cpp. Metadata is cached by
(size, mtime), so a scan after the first one reads nothing it has read before.

The index file (``data_paths().library_file``) keeps user folders, provenance
(repo, revision, quant, downloaded/converted/imported) and that cache. It never
holds a token. ``remove(entry)`` deletes a model's files; ``import_gguf(path)``
copies a validated GGUF into the models folder. Works offline: nothing here
touches the network.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from common.paths import data_paths
from models import hub_env
from models.gguf_info import GGUFInfo, read_gguf_info
from models.gguf_names import quant_from_name, split_part
from models.gguf_validate import UnsafeGGUFError, validate_gguf

_LOCK = threading.Lock()


@dataclass
class LibraryEntry:
    path: Path                     # the GGUF (first part of a split one) or the checkpoint folder
    kind: str                      # "gguf" | "checkpoint"
    source: str                    # "models" | "hf-cache" | "folder"
    name: str
    size: int
    files: list = field(default_factory=list)
    info: Optional[GGUFInfo] = None
    problem: Optional[str] = None  # why the file is refused (validation failure)
    provenance: dict = field(default_factory=dict)
    repo_id: Optional[str] = None  # for HF cache entries

    @property
    def warnings(self) -> list:
        return list(self.info.warnings) if self.info else []

    @property
    def usable(self) -> bool:
        return self.problem is None


# --- the index file ------------------------------------------------------------

def _index_path() -> Path:
    return data_paths().library_file


def load_index() -> dict:
    try:
        data = json.loads(_index_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data.setdefault("folders", [])
    data.setdefault("provenance", {})
    data.setdefault("meta", {})
    return data


def _save_index(data: dict) -> None:
    path = _index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _update_index(fn) -> None:
    with _LOCK:
        data = load_index()
        fn(data)
        _save_index(data)


def add_folder(folder) -> None:
    folder = str(Path(folder).expanduser().resolve())
    _update_index(lambda d: d["folders"].append(folder) if folder not in d["folders"] else None)


def remove_folder(folder) -> None:
    folder = str(Path(folder).expanduser().resolve())
    _update_index(lambda d: d["folders"].remove(folder) if folder in d["folders"] else None)


def record_provenance(path, *, origin: str, repo_id: Optional[str] = None, revision: Optional[str] = None,
                      quant: Optional[str] = None, **extra) -> None:
    """Remember where a model came from: origin is 'downloaded', 'converted' or 'imported'."""
    rec = {"origin": origin, "repo": repo_id, "revision": revision, "quant": quant, **extra}
    key = str(Path(path).resolve())
    _update_index(lambda d: d["provenance"].__setitem__(key, {k: v for k, v in rec.items() if v is not None}))


# --- finding models ------------------------------------------------------------

def _gguf_groups(root: Path) -> list[list[Path]]:
    """GGUF files under ``root``, split sets grouped (first part first)."""
    sets: dict[str, list[Path]] = {}
    for p in sorted(root.rglob("*.gguf")):
        if not p.is_file():
            continue
        key = str(p)
        if split_part(p.name):
            key = str(p.parent / p.name.rsplit("-", 3)[0])
        sets.setdefault(key, []).append(p)
    return list(sets.values())


def _is_checkpoint(folder: Path) -> bool:
    cfg = folder / "config.json"
    if not cfg.is_file() or not any(folder.glob("*.safetensors")):
        return False
    try:
        config = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if "LlamaForCausalLM" not in (config.get("architectures") or []):
        return False
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError):
            return False
        return all((folder / s).exists() for s in shards)
    return True


def _dir_size(files) -> int:
    total = 0
    for f in files:
        try:
            total += Path(f).stat().st_size
        except OSError:
            pass
    return total


def _gguf_entry(files: list[Path], source: str, data: dict, repo_id: Optional[str] = None) -> LibraryEntry:
    first = files[0]
    size = _dir_size(files)
    key = str(first.resolve())
    entry = LibraryEntry(first, "gguf", source, first.name, size, list(files),
                         provenance=data["provenance"].get(key, {}), repo_id=repo_id)
    stat = first.stat()
    stamp = [size, stat.st_mtime_ns]
    cached = data["meta"].get(key)
    if cached and cached.get("stamp") == stamp:
        entry.problem = cached.get("problem")
        entry.info = GGUFInfo.from_dict(cached["info"]) if cached.get("info") else None
        return entry
    try:
        for f in files:
            if split_part(f.name) and f is not first:
                continue  # later parts hold tensors only; llama.cpp validates their offsets as it maps them
            validate_gguf(f)
        entry.info = read_gguf_info(first, total_size=size)
    except UnsafeGGUFError as exc:
        entry.problem = str(exc)
    except Exception as exc:  # noqa: BLE001 - a file we cannot read is listed as a problem
        entry.problem = f"{first.name}: unreadable GGUF ({exc})"
    data["meta"][key] = {"stamp": stamp, "problem": entry.problem,
                         "info": entry.info.to_dict() if entry.info else None}
    data["_dirty"] = True
    return entry


def _checkpoint_entry(folder: Path, source: str, data: dict, repo_id: Optional[str] = None) -> LibraryEntry:
    files = sorted(p for p in folder.iterdir() if p.is_file())
    name = repo_id or folder.name
    return LibraryEntry(folder, "checkpoint", source, name, _dir_size(files), files,
                        provenance=data["provenance"].get(str(folder.resolve()), {}), repo_id=repo_id)


def _hf_cache_repos() -> list[tuple[str, Path]]:
    cache = hub_env.hub_cache_dir()
    out = []
    if not cache.is_dir():
        return out
    for repo_dir in sorted(cache.glob("models--*")):
        repo_id = repo_dir.name[len("models--"):].replace("--", "/")
        for snap in sorted((repo_dir / "snapshots").glob("*")):
            if snap.is_dir():
                out.append((repo_id, snap))
    return out


def scan() -> list[LibraryEntry]:
    with _LOCK:
        data = load_index()
    entries: list[LibraryEntry] = []
    seen: set[str] = set()

    def add(e: LibraryEntry):
        key = str(Path(e.path).resolve())
        if key not in seen:
            seen.add(key)
            entries.append(e)

    models = data_paths().models
    if models.is_dir():
        for files in _gguf_groups(models):
            add(_gguf_entry(files, "models", data))
    for repo_id, snap in _hf_cache_repos():
        for files in _gguf_groups(snap):
            add(_gguf_entry(files, "hf-cache", data, repo_id))
        if _is_checkpoint(snap):
            add(_checkpoint_entry(snap, "hf-cache", data, repo_id))
    for folder in map(Path, data["folders"]):
        if not folder.is_dir():
            continue
        for files in _gguf_groups(folder):
            add(_gguf_entry(files, "folder", data))
        for cfg in sorted(folder.rglob("config.json")):
            if _is_checkpoint(cfg.parent):
                add(_checkpoint_entry(cfg.parent, "folder", data))
    if data.pop("_dirty", False):
        fresh_meta = data["meta"]
        _update_index(lambda d: d["meta"].update(fresh_meta))
    return entries


# --- changing the library ----------------------------------------------------------

def remove(entry: LibraryEntry) -> None:
    """Delete the model's files (for the HF cache: its snapshot and blobs no other snapshot uses)."""
    if entry.source == "hf-cache":
        _remove_from_hf_cache(Path(entry.path) if entry.kind == "checkpoint" else Path(entry.path).parent,
                              entry.files if entry.kind == "gguf" else None)
    elif entry.kind == "gguf":
        for f in entry.files:
            Path(f).unlink(missing_ok=True)
        _prune_empty(Path(entry.path).parent, data_paths().models)
    else:
        shutil.rmtree(entry.path, ignore_errors=True)
    keys = {str(Path(f).resolve()) for f in [entry.path, *entry.files]}

    def forget(d):
        for k in keys:
            d["provenance"].pop(k, None)
            d["meta"].pop(k, None)
    _update_index(forget)


def _remove_from_hf_cache(snap: Path, only: Optional[list] = None) -> None:
    repo_dir = snap.parents[1] if snap.parent.name == "snapshots" else snap
    targets = [Path(f) for f in only] if only else [p for p in snap.rglob("*") if p.is_symlink() or p.is_file()]
    blobs = {Path(os.path.realpath(p)) for p in targets if p.is_symlink()}
    for p in targets:
        p.unlink(missing_ok=True)
    still_used = {Path(os.path.realpath(p)) for p in (repo_dir / "snapshots").rglob("*") if p.is_symlink()}
    for b in blobs - still_used:
        b.unlink(missing_ok=True)
    if not only:
        shutil.rmtree(snap, ignore_errors=True)
    if not any(p.is_file() or p.is_symlink() for p in (repo_dir / "snapshots").rglob("*")):
        shutil.rmtree(repo_dir, ignore_errors=True)


def _prune_empty(folder: Path, root: Path) -> None:
    root = root.resolve()
    folder = folder.resolve()
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def import_gguf(path, *, models_dir: Optional[Path] = None) -> LibraryEntry:
    """Validate ``path`` and copy it into the models folder (``imported/``); returns its entry."""
    src = Path(path).expanduser()
    validate_gguf(src)
    dest_dir = Path(models_dir or data_paths().models) / "imported"
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    if dest.exists():
        raise FileExistsError(f"{dest.name} is already in the library ({dest}).")
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, tmp)
    validate_gguf(tmp)  # the copy, not just the original, is what will be opened
    os.replace(tmp, dest)
    record_provenance(dest, origin="imported", source_path=str(src.resolve()),
                      quant=quant_from_name(src.name))
    with _LOCK:
        data = load_index()
    entry = _gguf_entry([dest], "models", data)
    _update_index(lambda d: d["meta"].update(data["meta"]))
    return entry
