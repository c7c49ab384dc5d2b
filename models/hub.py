"""Search the Hugging Face Hub and list a repo's files, through huggingface_hub.

``search(query, kind="gguf"|"llama"|None, sort="downloads"|"likes"|"recent")``
returns ``RepoSummary`` rows; ``list_repo(repo_id)`` returns a ``RepoListing``
with every file's size and LFS sha256, the GGUF files grouped into sets by quant
type, and whether the repo is gated. The endpoint and token are resolved on each
call (see ``hub_env``); in offline mode both raise ``OfflineError``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from common.safe_paths import check_commit, check_name
from models import auth, hub_env, hub_http
from models.gguf_names import GGUFSet, group_gguf_files
from models.hub_errors import translate

SORTS = {"downloads": "downloads", "likes": "likes", "recent": "created_at"}
KIND_FILTERS = {None: None, "gguf": ["gguf"], "llama": ["llama", "safetensors"]}
_EXPAND = ["downloads", "likes", "gated", "tags", "createdAt", "lastModified", "library_name"]


@dataclass(frozen=True)
class RepoSummary:
    repo_id: str
    downloads: int
    likes: int
    gated: bool
    tags: tuple
    created: Optional[str]

    @property
    def kind(self) -> str:
        if "gguf" in self.tags:
            return "gguf"
        return "checkpoint" if "safetensors" in self.tags else "other"


@dataclass(frozen=True)
class RepoFile:
    path: str
    size: int
    sha256: Optional[str]        # LFS files only; small files are checked by their git hash

    @property
    def is_gguf(self) -> bool:
        return self.path.lower().endswith(".gguf")


@dataclass
class RepoListing:
    repo_id: str
    revision: str                # the commit the listing describes
    gated: bool
    files: list[RepoFile] = field(default_factory=list)

    @property
    def gguf_sets(self) -> list[GGUFSet]:
        return group_gguf_files((f.path, f.size) for f in self.files)

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def is_convertible_checkpoint(self) -> bool:
        names = {f.path for f in self.files}
        return "config.json" in names and any(n.endswith(".safetensors") for n in names)

    def file(self, path: str) -> RepoFile:
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(path)


def _api():
    from huggingface_hub import HfApi

    hub_http.install()
    return HfApi(endpoint=hub_env.endpoint())


def _token_arg(token):
    # False (not None) stops huggingface_hub from reading a token path fixed at its import.
    found = token if token is not None else auth.current_token()
    return found or False


def search(query: str = "", *, kind: Optional[str] = None, sort: str = "downloads",
           limit: int = 30, token: Optional[str] = None) -> list[RepoSummary]:
    if hub_env.offline():
        raise hub_env.OfflineError("searching")
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {sorted(SORTS)}")
    if kind not in KIND_FILTERS:
        raise ValueError("kind must be 'gguf', 'llama' or None")
    tok = _token_arg(token)
    out = []
    try:  # the listing is fetched as it is iterated
        for m in _api().list_models(search=query or None, filter=KIND_FILTERS[kind], sort=SORTS[sort],
                                    limit=limit, expand=_EXPAND, token=tok):
            created = getattr(m, "created_at", None)
            out.append(RepoSummary(m.id, int(m.downloads or 0), int(m.likes or 0), bool(m.gated),
                                   tuple(m.tags or ()), created.isoformat() if created else None))
    except Exception as exc:  # noqa: BLE001 - translated or re-raised as is
        source = None if tok is False else (auth.find_token().source if token is None else "the given token")
        raise translate(exc, "", source) from exc
    return out


def list_repo(repo_id: str, revision: Optional[str] = None, *,
              token: Optional[str] = None) -> RepoListing:
    if hub_env.offline():
        raise hub_env.OfflineError("listing a repo")
    tok = _token_arg(token)
    try:
        info = _api().model_info(repo_id, revision=revision, files_metadata=True, token=tok)
    except Exception as exc:  # noqa: BLE001 - translated or re-raised as is
        source = None if tok is False else (auth.find_token().source if token is None else "the given token")
        raise translate(exc, repo_id, source) from exc
    files = []
    for s in info.siblings or []:
        # A name that could leave the download folder makes the whole listing untrustworthy.
        check_name(s.rfilename, "file name", f"in {repo_id}'s listing")
        lfs = getattr(s, "lfs", None)
        sha = getattr(lfs, "sha256", None) if lfs is not None else None
        size = s.size if s.size is not None else (getattr(lfs, "size", 0) if lfs else 0)
        files.append(RepoFile(s.rfilename, int(size or 0), sha))
    commit = check_commit(info.sha, "commit id", f"in {repo_id}'s listing") if info.sha else (revision or "main")
    return RepoListing(repo_id, commit, bool(info.gated), files)
