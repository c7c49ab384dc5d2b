"""Download one file from the Hub: resumable, verified while it streams, placed atomically.

``download_file(repo_id, filename, handle=...)`` is the plain function the CLI, the
download manager and the tests all use. huggingface_hub supplies the URL, the
metadata (commit, size, LFS sha256 or git blob hash) and the auth; the bytes are
streamed here with httpx and HTTP Range:

- bytes go to ``<final>.part``; a sidecar ``<final>.part.json`` records the
  expected size and hash, so any later process can resume the same bytes;
- the hash is computed inline as chunks arrive. On resume the partial prefix is
  re-hashed once (hashlib's state cannot be saved portably, and re-reading the
  prefix at disk speed also proves the partial was not damaged while we were away);
- only a file whose hash matches is renamed into place; a mismatch deletes it;
- transient failures (dropped connection, timeouts, 5xx, 429) are retried from the
  current offset with backoff delays supplied by a ``RetryPolicy`` (tests pass zeros);
- free space is checked first through an injectable ``free_space(path)`` query.

GGUF files go to LlamaDesk's models folder (``<models>/<owner>/<repo>/<file>``);
everything else into the Hugging Face cache layout, shared with other HF tools.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlsplit

from common.atomic import atomic_write_text
from common.lock import FileLock, LockHeld
from common.paths import data_paths
from common.safe_paths import UnsafePathError, check_commit, check_name, ensure_inside, safe_join
from common.task import TaskHandle, format_bytes
from models import auth, hub_env, hub_http
from models.download_errors import (DownloadBusy, DownloadError, HashMismatchError,  # noqa: F401 (public here)
                                    NotEnoughDiskSpace, UnverifiableFile)
from models.download_sink import BlockSink
from models.hub_errors import is_connection_failure, translate

CHUNK = 1 << 20
PART_SUFFIX = ".part"
SIDECAR_SUFFIX = ".part.json"
RETRY_STATUS = {408, 429, 500, 502, 503, 504}

FreeSpace = Callable[[Path], int]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait between attempts; ``wait(seconds, handle)`` is injectable."""

    attempts: int = 6
    delays: tuple = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
    wait: Optional[Callable[[float, TaskHandle], None]] = None

    def delay(self, failure: int) -> float:
        return self.delays[min(failure, len(self.delays) - 1)] if self.delays else 0.0

    def pause(self, failure: int, handle: TaskHandle) -> None:
        seconds = self.delay(failure)
        if self.wait is not None:
            self.wait(seconds, handle)
            return
        # Wait in slices so a cancel during backoff is honoured promptly.
        event = threading.Event()
        left = seconds
        while left > 0:
            handle.check()
            event.wait(min(0.2, left))
            left -= 0.2
        handle.check()


@dataclass(frozen=True)
class RemoteFile:
    repo_id: str
    filename: str
    revision: str           # what was asked for (branch, tag or commit)
    commit: str
    url: str                # where the bytes are (the CDN for LFS files)
    size: int
    sha256: Optional[str]   # LFS files
    git_sha1: Optional[str]  # small files: git's blob hash

    @property
    def blob_name(self) -> str:
        return self.sha256 or self.git_sha1 or ""


def default_free_space(path: Path) -> int:
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def _hex(value: Optional[str], length: int) -> Optional[str]:
    value = (value or "").strip('"').lower()
    if value.startswith("w/"):
        value = value[2:].strip('"')
    return value if len(value) == length and all(c in "0123456789abcdef" for c in value) else None


def check_repo_id(repo_id: str) -> str:
    """``owner/name`` (or a bare name) made of safe path parts; raises ``UnsafePathError``."""
    check_name(repo_id, "repo id")
    if repo_id.count("/") > 1:
        raise UnsafePathError(f"Refused the repo id {repo_id!r}: a repo id is owner/name.")
    return repo_id


def resolve_remote(repo_id: str, filename: str, revision: Optional[str] = None, *,
                   token: Optional[str] = None) -> RemoteFile:
    """Ask the Hub (HEAD on /resolve) for the file's commit, size, hash and location.

    Every name that will become part of a local path is checked here: the repo id, the
    file name, the revision asked for and the commit the Hub answers with (40 hex digits).
    A file the Hub gives no sha256 or git hash for is refused: it could not be verified.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    if hub_env.offline():
        raise hub_env.OfflineError("downloading")
    check_repo_id(repo_id)
    check_name(filename, "file name", f"in {repo_id}")
    if revision is not None:
        check_name(revision, "revision")
    hub_http.install()
    ep = hub_env.endpoint()
    info = auth.find_token() if token is None else auth.TokenInfo(token, "the given token")
    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=ep)
    try:
        meta = get_hf_file_metadata(url, token=info.token if info else False, endpoint=ep,
                                    retry_on_errors=True)
    except Exception as exc:  # noqa: BLE001 - translated or re-raised as is
        raise translate(exc, repo_id, info.source if info else None) from exc
    commit = check_commit(meta.commit_hash or "", "commit id", f"the Hub gave for {filename}")
    if revision is not None and _hex(revision, 40) == revision and commit != revision:
        raise UnsafePathError(f"Refused {filename}: the Hub answered with commit {commit} when asked "
                              f"for commit {revision}.")
    sha256 = _hex(meta.etag, 64)
    git_sha1 = None if sha256 else _hex(meta.etag, 40)
    if meta.size is None:
        raise DownloadError(f"The Hub did not say how big {filename} is; cannot download it safely.")
    if not (sha256 or git_sha1):
        raise UnverifiableFile(f"Refused {filename} from {repo_id}: the Hub gave no sha256 or git hash "
                               "for it, so the download could not be verified.")
    if int(meta.size) < 0:
        raise DownloadError(f"The Hub gave a negative size for {filename}; cannot download it safely.")
    return RemoteFile(repo_id, filename, revision or "main", commit, meta.location,
                      int(meta.size), sha256, git_sha1)


# --- where files go -------------------------------------------------------------

def goes_to_models_folder(filename: str) -> bool:
    return filename.lower().endswith(".gguf")


def repo_cache_dir(repo_id: str) -> Path:
    return hub_env.hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))


def _root(remote: RemoteFile, models_dir: Optional[Path] = None) -> Path:
    """The folder nothing of this file may leave: the models folder, or the repo's HF cache."""
    if goes_to_models_folder(remote.filename):
        return Path(models_dir) if models_dir else data_paths().models
    return repo_cache_dir(check_repo_id(remote.repo_id))


def final_path(remote: RemoteFile, models_dir: Optional[Path] = None) -> Path:
    """Where the verified file will live (for the HF cache: its blob)."""
    root = _root(remote, models_dir)
    if goes_to_models_folder(remote.filename):
        check_repo_id(remote.repo_id)
        check_name(remote.filename, "file name", f"in {remote.repo_id}")
        return safe_join(root, f"{remote.repo_id}/{remote.filename}", "download path")
    if not remote.blob_name:
        raise UnverifiableFile(f"Refused {remote.filename} from {remote.repo_id}: the Hub gave no hash "
                               "for it, so the download could not be verified.")
    return safe_join(root, f"blobs/{remote.blob_name}", "blob name")


def placed_path(remote: RemoteFile, models_dir: Optional[Path] = None) -> Path:
    """The path a user or a loader opens (for the HF cache: the snapshot entry)."""
    if goes_to_models_folder(remote.filename):
        return final_path(remote, models_dir)
    commit = check_commit(remote.commit, "commit id", f"the Hub gave for {remote.filename}")
    check_name(remote.filename, "file name", f"in {remote.repo_id}")
    return safe_join(_root(remote, models_dir), f"snapshots/{commit}/{remote.filename}", "snapshot entry")


def partial_paths(final: Path) -> tuple[Path, Path]:
    return final.with_name(final.name + PART_SUFFIX), final.with_name(final.name + SIDECAR_SUFFIX)


def partial_size(remote: RemoteFile, models_dir: Optional[Path] = None) -> int:
    """Bytes already on disk for this exact file (0 when the partial belongs to other bytes)."""
    part, sidecar = partial_paths(final_path(remote, models_dir))
    if not part.exists() or _read_sidecar(sidecar) != _sidecar_record(remote):
        return 0
    return min(part.stat().st_size, remote.size)


def discard_partial(remote: RemoteFile, models_dir: Optional[Path] = None) -> None:
    for p in partial_paths(final_path(remote, models_dir)):
        p.unlink(missing_ok=True)


def _sidecar_record(remote: RemoteFile) -> dict:
    rec = asdict(remote)
    for volatile in ("url", "revision"):  # signed CDN URLs expire; a branch may be asked by commit
        rec.pop(volatile)
    return rec


def _read_sidecar(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_json_atomic(path: Path, obj: dict) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1))


# --- disk space ---------------------------------------------------------------------

def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk_space(needs: list[tuple[Path, int]], free_space: FreeSpace = default_free_space) -> None:
    """Refuse the whole request up front if any filesystem lacks room for its share."""
    by_device: dict[int, tuple[Path, int]] = {}
    for target, nbytes in needs:
        where = _existing(Path(target).parent)
        dev = where.stat().st_dev
        prev = by_device.get(dev, (where, 0))
        by_device[dev] = (prev[0], prev[1] + max(0, nbytes))
    for where, need in by_device.values():
        free = free_space(where)
        if need > free:
            raise NotEnoughDiskSpace(
                f"Not enough disk space: this download needs {format_bytes(need)} but only "
                f"{format_bytes(free)} is free in {where}. Free up {format_bytes(need - free)} "
                "or choose another models folder, then try again.")


# --- the transfer ---------------------------------------------------------------------

def _new_hasher(remote: RemoteFile):
    if remote.sha256:
        return hashlib.sha256()
    h = hashlib.sha1()
    if remote.git_sha1:
        h.update(b"blob %d\0" % remote.size)
    return h


def _expected_digest(remote: RemoteFile) -> Optional[str]:
    return remote.sha256 or remote.git_sha1


def _rehash_prefix(part: Path, nbytes: int, hasher, handle: TaskHandle, label: str) -> None:
    done = 0
    with open(part, "rb") as f:
        while done < nbytes:
            handle.check()
            block = f.read(min(CHUNK * 8, nbytes - done))
            if not block:
                break
            hasher.update(block)
            done += len(block)
            handle.progress(done, nbytes, unit="B", message=f"checking the partial {label}")


class _Lock:
    """An exclusive lock on ``<final>.part.lock`` (released by the OS if the process dies)."""

    def __init__(self, path: Path, label: str):
        self.lock = FileLock(path, mode=0o644, unlink=True)
        self.label = label

    def __enter__(self):
        self.lock.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.lock.acquire()
        except LockHeld:
            raise DownloadBusy(f"{self.label} is being downloaded by another LlamaDesk process.") from None
        return self

    def __exit__(self, *exc):
        self.lock.release()


_CLIENT = None
_CLIENT_LOCK = threading.Lock()


def _shared_client():
    """One httpx client for all downloads: building one costs ~0.1 s (TLS setup) and
    sharing it keeps connections alive between files. httpx clients are thread-safe."""
    global _CLIENT
    import httpx

    with _CLIENT_LOCK:
        if _CLIENT is None:
            _CLIENT = httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=True)
        return _CLIENT


def _auth_headers(url: str, token: Optional[str]) -> dict:
    headers = {"Accept-Encoding": "identity"}
    if token and urlsplit(url).netloc == urlsplit(hub_env.endpoint()).netloc:
        headers["Authorization"] = f"Bearer {token}"  # never sent to the CDN
    return headers


def download_file(repo_id: str, filename: str, *, revision: Optional[str] = None,
                  handle: Optional[TaskHandle] = None, models_dir: Optional[Path] = None,
                  token: Optional[str] = None, retry: RetryPolicy = RetryPolicy(),
                  free_space: FreeSpace = default_free_space, remote: Optional[RemoteFile] = None,
                  client=None, chunk_size: Optional[int] = None) -> Path:
    """Download (or resume) one file and return the path to open; see the module docstring.

    ``chunk_size`` None writes what each socket read returns, so a dropped connection
    loses nothing already received. Raises ``Cancelled`` (the partial stays, resumable), ``HashMismatchError``,
    ``NotEnoughDiskSpace``, ``HubAccessError`` subclasses and ``OfflineError``.
    """
    handle = handle or TaskHandle()
    if hub_env.offline():
        raise hub_env.OfflineError(f"downloading {filename}")
    tok = token if token is not None else auth.current_token()
    remote = remote or resolve_remote(repo_id, filename, revision, token=token)
    root = _root(remote, models_dir)
    final = final_path(remote, models_dir)
    placed_path(remote, models_dir)  # refused now, before any byte, if a link leads it outside
    part, sidecar = partial_paths(final)
    lock = final.with_name(final.name + ".part.lock")
    for p in (part, sidecar, sidecar.with_name(sidecar.name + ".tmp"), lock):
        ensure_inside(root, p)
    if final.exists() and final.stat().st_size == remote.size and _already_verified(remote, final, handle):
        return _place(remote, final, models_dir)
    with _Lock(lock, filename):
        offset = partial_size(remote, models_dir)
        if offset == 0:
            part.unlink(missing_ok=True)
        check_disk_space([(final, remote.size - offset)], free_space)
        _write_json_atomic(sidecar, _sidecar_record(remote))
        hasher = _new_hasher(remote)
        if offset:
            _rehash_prefix(part, offset, hasher, handle, filename)
        hasher = _transfer(remote, part, offset, hasher, handle, tok, retry, client, chunk_size)
        got = hasher.hexdigest()
        expected = _expected_digest(remote)
        if not expected or got != expected:
            part.unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
            algo = "sha256" if remote.sha256 else "git hash"
            raise HashMismatchError(
                f"{filename} from {repo_id} failed verification: its {algo} is {got[:16]}..., "
                f"but the Hub says {(expected or 'nothing')[:16]}.... The corrupt download was deleted; "
                "download it again.")
        ensure_inside(root, final)
        os.replace(part, final)
        sidecar.unlink(missing_ok=True)
    return _place(remote, final, models_dir)


def _already_verified(remote: RemoteFile, final: Path, handle: TaskHandle) -> bool:
    """An HF-cache blob is named by its hash, so it was verified when placed; a file in the
    models folder of the right size is hashed again before it counts as this download."""
    if not goes_to_models_folder(remote.filename):
        return True
    hasher = _new_hasher(remote)
    _rehash_prefix(final, remote.size, hasher, handle, remote.filename)
    return hasher.hexdigest() == _expected_digest(remote)


def _transfer(remote: RemoteFile, part: Path, offset: int, hasher, handle: TaskHandle,
              token: Optional[str], retry: RetryPolicy, client, chunk_size: Optional[int]):
    import httpx

    client = client or _shared_client()
    failures = 0
    url = remote.url
    with open(part, "ab") as f:
        sink = BlockSink(f, hasher, part)
        try:
            handle.restart_clock(offset)
            while offset < remote.size:
                handle.check()
                headers = _auth_headers(url, token)
                if offset:
                    headers["Range"] = f"bytes={offset}-"
                try:
                    with client.stream("GET", url, headers=headers) as resp:
                        if resp.status_code in RETRY_STATUS:
                            raise _Transient(f"HTTP {resp.status_code}")
                        if resp.status_code in (401, 403, 404, 410) and url == remote.url:
                            # A signed CDN URL may have expired: ask the Hub for a fresh one.
                            url = resolve_remote(remote.repo_id, remote.filename, remote.commit or None,
                                                 token=token).url
                            raise _Transient(f"HTTP {resp.status_code}")
                        if resp.status_code == 200 and offset:
                            sink.drain()
                            f.truncate(0)  # the server ignored Range: start over
                            f.seek(0)
                            offset = 0
                            sink.hasher = _new_hasher(remote)
                        elif resp.status_code not in (200, 206):
                            raise DownloadError(f"The server answered HTTP {resp.status_code} "
                                                f"for {remote.filename}.")
                        for block in resp.iter_raw(chunk_size):
                            handle.check()
                            if offset + len(block) > remote.size:
                                raise DownloadError(f"The server sent more bytes than {remote.filename} has.")
                            sink.put(block)
                            offset += len(block)
                            failures = 0
                            handle.progress(offset, remote.size, unit="B", message=remote.filename)
                    if offset < remote.size:
                        raise _Transient("connection closed early")
                except (httpx.TransportError, _Transient) as exc:
                    failures += 1
                    if failures >= retry.attempts:
                        why = ("the server could not be reached: no network?" if is_connection_failure(exc)
                               else str(exc))
                        raise DownloadError(f"Downloading {remote.filename} failed after {failures} "
                                            f"attempts ({why}). Run it again to resume from "
                                            f"{format_bytes(offset)}.") from exc
                    retry.pause(failures - 1, handle)
        finally:
            sink.close()  # every block handed over is on disk before we return, even on cancel
        f.flush()
        os.fsync(f.fileno())
    return sink.hasher


class _Transient(Exception):
    pass


def _place(remote: RemoteFile, final: Path, models_dir: Optional[Path]) -> Path:
    """Link an HF-cache blob into its snapshot and record the ref, as huggingface_hub does.

    A GGUF in the models folder gets its provenance recorded in the library instead."""
    if goes_to_models_folder(remote.filename):
        from models.gguf_names import quant_from_name
        from models.library import record_provenance

        record_provenance(final, origin="downloaded", repo_id=remote.repo_id, revision=remote.commit,
                          quant=quant_from_name(remote.filename))
        return final
    root = _root(remote, models_dir)
    snap = placed_path(remote, models_dir)
    snap.parent.mkdir(parents=True, exist_ok=True)
    if os.path.realpath(snap) != os.path.realpath(final):
        if snap.is_symlink() or snap.exists():
            snap.unlink()  # a stale entry inside the repo's cache (placed_path checked where it leads)
        try:
            snap.symlink_to(os.path.relpath(final, snap.parent))
        except OSError:
            shutil.copyfile(final, snap)
    if remote.revision != remote.commit and remote.commit:
        ref = safe_join(root, f"refs/{check_name(remote.revision, 'revision')}", "revision")
        ref.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(ref, remote.commit)
    return snap

