"""Saved KV caches ("snapshots") of conversations, so going back to one is instant.

After a reply the engine copies the state of the sequence it holds
(``llama_state_seq_get_data``) with its token list into a ``SnapshotStore``: into RAM
(recent ones, within a budget) and, on a writer thread, into a file under the cache
folder. When a reply is requested, the snapshot whose tokens the new prompt reuses
most (``plan_reuse``: a prefix, or a prefix plus a shifted run) is restored
(``llama_state_seq_set_data``) if that beats the live cache, and only the rest is
evaluated.

A snapshot is only ever restored into the same thing it came from. Its *key* holds
the model file's identity (resolved path, size, mtime), n_ctx, the KV cache types,
flash attention, GPU layers, and the llama.cpp build (version and system info);
snapshots of one key live in one folder named by the key's hash, and every file
repeats the key in its header. Whether the cache was exact or shifted travels with
the snapshot (``approx_from``), so a shifted one comes back exactly as it was live
and the idle rebuild can finish the job.

The file format (``engine.snapshot_file``): a header with its own CRC, the tokens, the
state, each checked. A file that is truncated, has a flipped bit, another key or another
format is detected, removed, and never restored: the history is then read again.
CRC-32 (zlib) rather than a cryptographic hash: it finds accidental damage at several
GB/s, and the folder is the user's own.

Files are named ``<tag>-<hash of the tokens>.ldkv``: the tag is the conversation
(its id), so deleting a conversation deletes ``<tag>-*``, and several branches of
one conversation keep a file each; a newer snapshot of the same conversation that
extends an older one replaces it. The disk budget is kept by deleting the least
recently used files (mtime, refreshed on every restore).
"""
from __future__ import annotations

import atexit
import collections
import hashlib
import json
import logging
import os
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from engine.kv_reuse import plan_reuse
from engine.snapshot_file import (_PREFIX, FORMAT, MAGIC, BadSnapshot, SnapshotMeta,  # noqa: F401
                                  encode_prefix, read_meta, read_payload)

log = logging.getLogger(__name__)

SUFFIX = ".ldkv"

# 4 GiB on disk by default: a full 8K window is ~180 MB for the demo model and ~1 GiB for
# Llama 3 8B (128 KiB per token at F16), and most chats are far shorter (a 1,500-token
# chat of 8B is ~190 MB), so this keeps a few dozen recent chats of an 8B model, or every
# chat of a small one, while staying a small share of a laptop's disk. 0 turns saving off.
DEFAULT_DISK_BUDGET_MB = 4096
# RAM for the most recent states (switching back and forth never reads the disk):
# 1 GiB, at most an eighth of the machine's memory.
RAM_BUDGET_CAP = 1 << 30
# Restoring costs reading the whole snapshot; it must save enough evaluation to pay.
MIN_RESTORE_GAIN = 16
MIN_GAIN_SHARE = 8          # ... and at least 1/8 of the snapshot's tokens


def default_ram_budget() -> int:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return min(RAM_BUDGET_CAP, total // 8)


def snapshots_root() -> Path:
    from common.paths import data_paths

    return data_paths().kv_snapshots_dir


def model_identity(path: Path) -> dict:
    st = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def llama_build() -> dict:
    import llama_cpp

    info = llama_cpp.llama_print_system_info()
    return {"version": getattr(llama_cpp, "__version__", "?"),
            "system": info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)}


def key_id(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def tokens_hash(tokens: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(tokens, dtype="<i4").tobytes()).hexdigest()[:16]


def safe_tag(tag: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", str(tag))[:40] or "_"


@dataclass
class Restored:
    """How a snapshot came back: shown as "restored 7,912 tokens in 0.4 s"."""

    tokens: int
    seconds: float
    source: str                    # "ram" | "disk"
    exact: bool = True
    name: str = ""

    def text(self) -> str:
        where = " from memory" if self.source == "ram" else ""
        took = f"{self.seconds:.1f}" if self.seconds >= 0.095 else f"{self.seconds:.2f}"
        return f"Restored {self.tokens:,} tokens{where} in {took} s"

    def to_dict(self) -> dict:
        return {"tokens": self.tokens, "seconds": self.seconds, "source": self.source,
                "exact": self.exact}


# --- folder-wide operations (any thread, any front end) ----------------------------------
def snapshot_files(root: Optional[Path] = None) -> list[Path]:
    root = Path(root) if root is not None else snapshots_root()
    if not root.is_dir():
        return []
    return [p for d in root.iterdir() if d.is_dir() for p in d.glob(f"*{SUFFIX}")]


def disk_usage(root: Optional[Path] = None) -> int:
    total = 0
    for p in snapshot_files(root):
        try:
            total += p.stat().st_size
        except OSError:
            pass
    return total


def _unlink(p: Path) -> bool:
    try:
        p.unlink()
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("could not remove %s: %s", p, exc)
        return False


def forget_conversations(tags: Iterable, root: Optional[Path] = None) -> int:
    """Delete every snapshot of these conversations (ids); returns how many files."""
    prefixes = {safe_tag(t) + "-" for t in tags}
    return sum(_unlink(p) for p in snapshot_files(root) if any(p.name.startswith(x) for x in prefixes))


def keep_conversations(tags: Iterable, root: Optional[Path] = None) -> int:
    """Delete the snapshots of conversations not in ``tags`` (gone for good)."""
    keep = {safe_tag(t) for t in tags}
    return sum(_unlink(p) for p in snapshot_files(root) if p.name.rsplit("-", 1)[0] not in keep)


def clear_all(root: Optional[Path] = None) -> int:
    return sum(_unlink(p) for p in snapshot_files(root))


def prune_stale(root: Optional[Path] = None, older_tmp_s: float = 3600) -> int:
    """Delete snapshot folders whose model file is gone or changed, and leftover temp files."""
    root = Path(root) if root is not None else snapshots_root()
    removed = 0
    if not root.is_dir():
        return 0
    for d in root.iterdir():
        if not d.is_dir():
            continue
        try:
            key = json.loads((d / "key.json").read_text("utf-8"))
            model = key["model"]
            st = Path(model["path"]).stat()
            stale = (st.st_size, st.st_mtime_ns) != (model["size"], model["mtime_ns"])
        except (OSError, ValueError, KeyError, TypeError):
            stale = True
        for p in d.iterdir():
            if stale or (p.name.endswith(".tmp") and time.time() - _mtime(p) > older_tmp_s):
                removed += _unlink(p)
        if stale:
            try:
                d.rmdir()
            except OSError:
                pass
    return removed


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return time.time()


def evict(budget: int, root: Optional[Path] = None, keep: Optional[Path] = None) -> int:
    """Delete least recently used snapshots until the folder holds at most ``budget`` bytes."""
    files = []
    for p in snapshot_files(root):
        try:
            st = p.stat()
        except OSError:
            continue
        files.append((st.st_mtime_ns, st.st_size, p))
    total = sum(f[1] for f in files)
    removed = 0
    for _mt, size, p in sorted(files, key=lambda f: f[0]):
        if total <= budget:
            break
        if keep is not None and p == keep:
            continue
        if _unlink(p):
            removed += 1
        total -= size
    return removed


# --- the store one loaded model uses ---------------------------------------------------
@dataclass
class _Job:
    path: Path
    meta: Optional[SnapshotMeta]
    payload: Optional[memoryview]
    gen: int
    supersedes: list = field(default_factory=list)


class SnapshotStore:
    """The snapshots of one key: RAM copies, the files, a writer thread.

    ``best``, ``load`` and ``put`` are called by the model's owner thread; ``forget``,
    ``clear`` and ``flush`` from any thread.
    """

    def __init__(self, root: Path, key: dict, *, disk_budget: int = DEFAULT_DISK_BUDGET_MB << 20,
                 ram_budget: Optional[int] = None):
        self.root = Path(root)
        self.key = key
        self.dir = self.root / key_id(key)
        self.disk_budget = disk_budget
        self.ram_budget = default_ram_budget() if ram_budget is None else ram_budget
        self.removed: list[tuple[str, str]] = []     # (file name, why): bad snapshots thrown away
        self._lock = threading.RLock()
        self._ram: "collections.OrderedDict[str, tuple[SnapshotMeta, object]]" = collections.OrderedDict()
        self._index: dict[str, SnapshotMeta] = {}
        self._gen = 0
        self._jobs: "queue.Queue[Optional[_Job]]" = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._thread: Optional[threading.Thread] = None
        self.saves = 0
        self.last_save_s = 0.0       # time to copy the state out of llama.cpp (owner thread)
        self.last_write_s = 0.0      # time to write the file (writer thread)
        atexit.register(self._flush_at_exit)   # a snapshot being written is finished first

    # --- finding --------------------------------------------------------------------
    def candidates(self) -> list[SnapshotMeta]:
        """Every usable snapshot of this key (RAM copies first), bad files removed."""
        with self._lock:
            out = {name: meta for name, (meta, _buf) in self._ram.items()}
        try:
            entries = list(os.scandir(self.dir))
        except OSError:
            entries = []
        seen = set()
        for e in entries:
            if not e.name.endswith(SUFFIX):
                continue
            seen.add(e.name)
            if e.name in out:
                continue
            try:
                st = e.stat()
            except OSError:
                continue
            with self._lock:
                meta = self._index.get(e.name)
            if meta is None or (meta.ino, meta.size) != (st.st_ino, st.st_size):
                try:
                    meta = read_meta(Path(e.path), self.key)
                except BadSnapshot as exc:
                    self._discard(e.name, str(exc))
                    continue
                with self._lock:
                    self._index[e.name] = meta
            out[e.name] = meta
        with self._lock:
            for name in list(self._index):
                if name not in seen:
                    del self._index[name]
        return list(out.values())

    def best(self, prompt: Sequence[int], live: int, *, can_shift: bool = True,
             exclude: Iterable[str] = ()) -> Optional[tuple[SnapshotMeta, int]]:
        """The snapshot worth restoring for ``prompt`` (with how many tokens it lets
        the prompt reuse), or None when the live cache (reusing ``live``) does as well."""
        skip = set(exclude)
        pick = None
        for meta in self.candidates():
            if meta.name in skip:
                continue
            reused = plan_reuse(meta.tokens, prompt, can_shift=can_shift).reused
            gain = reused - live
            if gain < MIN_RESTORE_GAIN or gain * MIN_GAIN_SHARE < meta.n_tokens:
                continue
            # Most reuse first; on a tie an exact snapshot, then one in RAM.
            rank = (reused, meta.exact, self.in_ram(meta.name))
            if pick is None or rank > pick[0]:
                pick = (rank, meta, reused)
        return None if pick is None else (pick[1], pick[2])

    def in_ram(self, name: str) -> bool:
        with self._lock:
            return name in self._ram

    def load(self, meta: SnapshotMeta) -> tuple[object, str]:
        """The payload of ``meta`` (a buffer) and where it came from; ``BadSnapshot``
        after removing a damaged file."""
        with self._lock:
            hit = self._ram.get(meta.name)
            if hit is not None:
                self._ram.move_to_end(meta.name)
                return hit[1], "ram"
        path = self.dir / meta.name
        try:
            buf = read_payload(path, meta)
        except BadSnapshot as exc:
            self._discard(meta.name, str(exc))
            raise
        try:
            os.utime(path)          # recently used: evicted last
        except OSError:
            pass
        # Not kept in RAM: it is a mapping of the file (which would keep the file open), and
        # the page cache holds it for a while anyway; the next save of it goes to RAM.
        return buf, "disk"

    def discard(self, name: str, why: str) -> None:
        self._discard(name, why)

    def _discard(self, name: str, why: str) -> None:
        log.warning("snapshot %s ignored and removed: %s", name, why)
        with self._lock:
            self.removed.append((name, why))
            self._ram.pop(name, None)
            self._index.pop(name, None)
        _unlink(self.dir / name)

    # --- saving ---------------------------------------------------------------------
    def put(self, tag: str, tokens: Sequence[int], approx_from: Optional[int], payload) -> SnapshotMeta:
        """Keep a copy of a state (``payload``: a buffer from llama_state_seq_get_data):
        in RAM at once, on disk from the writer thread."""
        toks = np.asarray(tokens, dtype="<i4").copy()
        view = memoryview(payload).cast("B")
        tag = safe_tag(tag)
        name = f"{tag}-{tokens_hash(toks)}{SUFFIX}"
        meta = SnapshotMeta(name=name, tag=tag, tokens=toks, approx_from=approx_from,
                            payload_len=view.nbytes, payload_crc=0)
        # Older snapshots of this conversation that this one extends are no longer needed
        # (unless they are exact further than this one).
        older = [m for m in self.candidates() if m.tag == tag and m.name != name
                 and m.n_tokens <= len(toks) and np.array_equal(m.tokens, toks[:m.n_tokens])
                 and (approx_from is None or approx_from >= m.n_tokens or not m.exact)]
        with self._lock:
            for m in older:
                self._ram.pop(m.name, None)
            self._keep_in_ram(meta, payload)
            self.saves += 1
            if self.disk_budget <= 0 or 4 * len(toks) + view.nbytes > self.disk_budget:
                return meta
            self._pending += 1
            self._jobs.put(_Job(self.dir / name, meta, view, self._gen, [m.name for m in older]))
            if self._thread is None:
                self._thread = threading.Thread(target=self._write_loop, name="llamadesk-snapshots",
                                                daemon=True)
                self._thread.start()
        return meta

    def _keep_in_ram(self, meta: SnapshotMeta, buf) -> None:
        size = memoryview(buf).nbytes
        with self._lock:
            self._ram.pop(meta.name, None)
            if size > self.ram_budget:
                return
            self._ram[meta.name] = (meta, buf)
            total = sum(memoryview(b).nbytes for _m, b in self._ram.values())
            while total > self.ram_budget and len(self._ram) > 1:
                _name, (_m, old) = self._ram.popitem(last=False)
                total -= memoryview(old).nbytes

    def _write_loop(self) -> None:
        from common.atomic import atomic_write_chunks

        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                with self._lock:
                    current = job.gen == self._gen
                if current:
                    t0 = time.perf_counter()
                    self.dir.mkdir(parents=True, exist_ok=True)
                    key_file = self.dir / "key.json"
                    if not key_file.exists():
                        atomic_write_chunks(key_file, [json.dumps(self.key, indent=1).encode()])
                    m = job.meta
                    prefix = encode_prefix(self.key, m.tag, m.tokens, m.approx_from, job.payload)
                    atomic_write_chunks(job.path, [prefix, job.payload])
                    self.last_write_s = time.perf_counter() - t0
                    for name in job.supersedes:
                        with self._lock:
                            self._index.pop(name, None)
                        _unlink(self.dir / name)
                    with self._lock:
                        stale = job.gen != self._gen
                    if stale:                      # cleared while it was being written
                        _unlink(job.path)
                    else:
                        evict(self.disk_budget, self.root, keep=job.path)
            except OSError as exc:                 # a full disk: the snapshot stays in RAM only
                log.warning("could not save a conversation snapshot: %s", exc)
            except Exception:
                log.exception("saving a conversation snapshot failed")
            finally:
                job.meta = job.payload = None
                with self._lock:
                    self._pending -= 1
                    self._idle.notify_all()

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until every queued snapshot is on disk; False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    # --- deleting -------------------------------------------------------------------
    def forget(self, tags: Iterable) -> int:
        tags = {safe_tag(t) for t in tags}
        self.flush(timeout=60)        # a file still being written must not come back after this
        with self._lock:
            for name in [n for n, (m, _b) in self._ram.items() if m.tag in tags]:
                del self._ram[name]
        return forget_conversations(tags, self.root)

    def clear(self) -> int:
        """Forget every snapshot (all keys), in RAM and on disk."""
        self.flush(timeout=60)
        with self._lock:
            self._gen += 1
            self._ram.clear()
            self._index.clear()
        return clear_all(self.root)

    def _flush_at_exit(self) -> None:
        self.flush(timeout=30)

    def close(self) -> None:
        atexit.unregister(self._flush_at_exit)
        self.flush(timeout=60)
        with self._lock:
            thread, self._thread = self._thread, None
            self._ram.clear()
        if thread is not None:
            self._jobs.put(None)
            thread.join(timeout=10)

    @property
    def ram_bytes(self) -> int:
        with self._lock:
            return sum(memoryview(b).nbytes for _m, b in self._ram.values())
