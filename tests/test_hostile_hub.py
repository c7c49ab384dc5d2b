"""A hostile Hub (or mirror through HF_ENDPOINT) cannot make a download leave its folder.

Through the public entry points: the `download` command in a child process and the
library's download functions, against the Hub stand-in's hostile switches. Each
refusal is one sentence, the command exits non-zero, nothing is written outside
the models folder or the HF cache, and files already there are untouched.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.paths import data_paths
from common.safe_paths import UnsafePathError
from models import file_download, hub, hub_env
from models.file_download import RetryPolicy
from tests.fixtures.hub_server import GGUF_MAIN, GGUF_REPO, OPEN_REPO

ROOT = Path(__file__).resolve().parents[1]
NO_WAIT = RetryPolicy(attempts=2, delays=(0.0,))
HOSTILE_NAMES = ["../evil", "/abs", "C:\\x", "a\\..\\b", "../../../../../evil.gguf", "ok/../../x.gguf",
                 "nul\x00.gguf", "./dot.gguf", "a//b.gguf", "c:evil.gguf"]


def llamadesk(*args):
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (links not followed) with its content."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = b"<link>" if p.is_symlink() else p.read_bytes()
    return out


def outside(tmp_path: Path) -> dict[str, bytes]:
    """What lies in the test's folder outside the LlamaDesk home and the HF home."""
    return {k: v for k, v in snapshot(tmp_path).items()
            if not k.startswith(("llamadesk-home" + os.sep, "hf-home" + os.sep))}


def one_sentence_error(out) -> str:
    """The one error line (progress lines may precede it on stderr)."""
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    errors = [line for line in out.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("error: "), out.stderr
    assert errors[0].count(". ") == 0 or "download it again" in errors[0], errors[0]
    assert "Traceback" not in out.stderr
    return errors[0]


@pytest.fixture
def decoys(tmp_path):
    """Files a hostile name might aim at, around (not inside) the data folders."""
    files = {tmp_path / "evil": b"precious 1", tmp_path / "evil.gguf": b"precious 2",
             tmp_path / "x.gguf": b"precious 3", tmp_path / "abs": b"precious 4"}
    for p, data in files.items():
        p.write_bytes(data)
    return files


@pytest.mark.parametrize("name", HOSTILE_NAMES[:4])
def test_a_hostile_listing_is_refused_by_the_download_command(hub_server, tmp_path, decoys, name):
    hub_server.add_files(GGUF_REPO, {name: b"evil bytes"})
    before = outside(tmp_path)
    out = llamadesk("download", GGUF_REPO)
    line = one_sentence_error(out)
    assert line.startswith(f"error: Refused the file name {name!r} in {GGUF_REPO}'s listing: it "), line
    assert outside(tmp_path) == before
    assert not data_paths().models.exists() or snapshot(data_paths().models) == {}
    assert not any(r.path.startswith("/cdn/") or "/resolve/" in r.path for r in hub_server.requests)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_download_file_refuses_a_hostile_name_before_asking_the_hub(hub_server, tmp_path, decoys, name):
    hub_server.add_files(GGUF_REPO, {name: b"evil bytes"})
    before = outside(tmp_path)
    with pytest.raises(UnsafePathError) as err:
        file_download.download_file(GGUF_REPO, name, models_dir=tmp_path / "models", retry=NO_WAIT)
    assert str(err.value).startswith("Refused the file name ") and "\n" not in str(err.value)
    assert outside(tmp_path) == before
    assert hub_server.requests == []


def test_the_search_listing_is_refused_too(hub_server):
    hub_server.add_files(GGUF_REPO, {"../evil": b"evil"})
    with pytest.raises(UnsafePathError, match=r"Refused the file name '\.\./evil' in "):
        hub.list_repo(GGUF_REPO)
    out = llamadesk("search", "--files", GGUF_REPO)
    assert out.returncode != 0 and "Refused the file name '../evil'" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("commit", ["../../x", "main", "g" * 40, "A" * 40, "0" * 39, "0" * 40 + "/.."])
def test_a_hostile_commit_header_is_refused(hub_server, tmp_path, commit):
    cache = hub_env.hub_cache_dir()
    aimed_at = cache / "x" / "config.json"   # where snapshots/../../x/config.json would land
    aimed_at.parent.mkdir(parents=True)
    aimed_at.write_bytes(b"precious")
    hub_server.commit_header[OPEN_REPO] = commit
    before = outside(tmp_path)
    out = llamadesk("download", OPEN_REPO, "--include", "config.json")
    line = one_sentence_error(out)
    assert line == (f"error: Refused the commit id {commit!r} the Hub gave for config.json: a commit id "
                    "is 40 hexadecimal digits.")
    assert aimed_at.read_bytes() == b"precious"
    assert outside(tmp_path) == before
    repo_cache = file_download.repo_cache_dir(OPEN_REPO)
    assert not repo_cache.exists() or snapshot(repo_cache) == {}


def test_a_small_file_that_does_not_match_its_blob_id_is_not_kept(hub_server):
    real = hub_server.state.repos[OPEN_REPO].files["config.json"]
    hub_server.serve_instead["config.json"] = real.replace(b"llama", b"LLAMA")
    assert len(hub_server.serve_instead["config.json"]) == len(real)
    out = llamadesk("download", OPEN_REPO, "--include", "config.json")
    line = one_sentence_error(out)
    assert "config.json from testorg/Tiny-Llama-3-Instruct failed verification: its git hash is" in line
    assert "The corrupt download was deleted" in line
    repo_cache = file_download.repo_cache_dir(OPEN_REPO)
    left = snapshot(repo_cache) if repo_cache.exists() else {}
    assert not any(k.startswith(("blobs", "snapshots")) for k in left), left


def test_a_file_the_hub_gives_no_hash_for_is_refused(hub_server, tmp_path):
    hub_server.no_etag["README.md"] = True
    with pytest.raises(file_download.UnverifiableFile, match="the Hub gave no sha256 or git hash for it"):
        file_download.download_file(GGUF_REPO, "README.md", retry=NO_WAIT)
    assert not file_download.repo_cache_dir(GGUF_REPO).exists()


def test_an_existing_link_out_of_the_models_folder_is_not_written_through(hub_server, tmp_path):
    models = tmp_path / "models"
    folder = models / "bartowski" / "Llama-3.2-1B-Instruct-GGUF"
    folder.mkdir(parents=True)
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"precious")
    (folder / (GGUF_MAIN + ".part")).symlink_to(victim)
    with pytest.raises(UnsafePathError, match="a link leads it outside"):
        file_download.download_file(GGUF_REPO, GGUF_MAIN, models_dir=models, retry=NO_WAIT)
    (folder / (GGUF_MAIN + ".part")).unlink()
    (folder / GGUF_MAIN).symlink_to(victim)
    with pytest.raises(UnsafePathError, match="a link leads it outside"):
        file_download.download_file(GGUF_REPO, GGUF_MAIN, models_dir=models, retry=NO_WAIT)
    assert victim.read_bytes() == b"precious"
    assert hub_server.ranges_for(GGUF_MAIN) == []


def test_a_repo_folder_linked_out_of_the_models_folder_is_refused(hub_server, tmp_path):
    models = tmp_path / "models"
    (models / "bartowski").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (models / "bartowski" / "Llama-3.2-1B-Instruct-GGUF").symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match="a link leads it outside"):
        file_download.download_file(GGUF_REPO, GGUF_MAIN, models_dir=models, retry=NO_WAIT)
    assert list(elsewhere.iterdir()) == []


def test_a_snapshot_link_out_of_the_cache_is_not_written_through(hub_server, tmp_path):
    sha = hub_server.state.repos[OPEN_REPO].sha
    snap = file_download.repo_cache_dir(OPEN_REPO) / "snapshots" / sha
    snap.mkdir(parents=True)
    victim = tmp_path / "victim.json"
    victim.write_bytes(b"precious")
    (snap / "config.json").symlink_to(victim)
    out = llamadesk("download", OPEN_REPO, "--include", "config.json")
    line = one_sentence_error(out)
    assert "config.json" in line and "a link leads it outside" in line
    assert victim.read_bytes() == b"precious"


def test_a_hostile_revision_is_refused_before_anything_is_written(hub_server, tmp_path):
    before = outside(tmp_path)
    with pytest.raises(UnsafePathError, match=r"Refused the revision '\.\./\.\./\.\./x'"):
        file_download.download_file(OPEN_REPO, "config.json", revision="../../../x")
    assert outside(tmp_path) == before


def test_a_good_download_still_places_verified_files(hub_server, tmp_path):
    path = file_download.download_file(GGUF_REPO, GGUF_MAIN, models_dir=tmp_path / "models", retry=NO_WAIT)
    assert path.read_bytes() == hub_server.state.repos[GGUF_REPO].files[GGUF_MAIN]
    # A same-size file that is not the Hub's bytes is not taken for the download: it is replaced.
    path.write_bytes(b"\0" * path.stat().st_size)
    again = file_download.download_file(GGUF_REPO, GGUF_MAIN, models_dir=tmp_path / "models", retry=NO_WAIT)
    assert again.read_bytes() == hub_server.state.repos[GGUF_REPO].files[GGUF_MAIN]
