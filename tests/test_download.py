"""Downloads against the Hub stand-in: verified, resumable, atomic, with clear errors."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from common.task import Cancelled, TaskHandle
from models import file_download, hub_env
from models.file_download import RetryPolicy
from models.hub_errors import LicenceNotAccepted, SignInRequired, TokenRejected
from tests.fixtures.hub_server import (GATED_REPO, GGUF_MAIN, GGUF_REPO, GOOD_TOKEN,
                                       NO_LICENCE_TOKEN, OPEN_REPO)

ROOT = Path(__file__).resolve().parents[1]
NO_WAIT = RetryPolicy(attempts=4, delays=(0.0,))


def served(server, repo, name) -> bytes:
    return server.state.repos[repo].files[name]


def test_whole_repo_downloads_byte_for_byte(hub_server, tmp_path):
    from models.repo_download import download_repo

    paths = download_repo(OPEN_REPO, models_dir=tmp_path / "models", retry=NO_WAIT)
    files = hub_server.state.repos[OPEN_REPO].files
    assert sorted(paths) == sorted(files)
    for name, path in paths.items():
        assert path.read_bytes() == files[name], name
    # The HF cache layout: snapshot entries link to blobs named by their hash, and refs/main.
    snap = paths["model-00001-of-00003.safetensors"]
    assert snap.is_symlink() and Path(os.path.realpath(snap)).name == hashlib.sha256(
        files["model-00001-of-00003.safetensors"]).hexdigest()
    cache = file_download.repo_cache_dir(OPEN_REPO)
    assert (cache / "refs" / "main").read_text() == hub_server.state.repos[OPEN_REPO].sha
    # huggingface_hub itself finds the files offline.
    from huggingface_hub import try_to_load_from_cache

    assert try_to_load_from_cache(OPEN_REPO, "config.json", cache_dir=hub_env.hub_cache_dir()) == str(paths["config.json"])


def test_gguf_goes_to_the_models_folder(hub_server, tmp_path):
    path = file_download.download_file(GGUF_REPO, GGUF_MAIN, models_dir=tmp_path, retry=NO_WAIT)
    assert path == tmp_path / "bartowski" / "Llama-3.2-1B-Instruct-GGUF" / GGUF_MAIN
    assert path.read_bytes() == served(hub_server, GGUF_REPO, GGUF_MAIN)
    assert sorted(p.name for p in path.parent.iterdir()) == [GGUF_MAIN]


def test_gated_repo_without_token_says_sign_in(hub_server):
    with pytest.raises(SignInRequired) as err:
        file_download.download_file(GATED_REPO, "config.json")
    assert str(err.value).startswith(f"{GATED_REPO} is a gated model: sign in with a Hugging Face token")


def test_gated_repo_without_licence_links_to_it(hub_server, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", NO_LICENCE_TOKEN)
    with pytest.raises(LicenceNotAccepted) as err:
        file_download.download_file(GATED_REPO, "config.json")
    assert f"accept the licence at {hub_server.url}/{GATED_REPO}" in str(err.value)


def test_wrong_token_says_so(hub_server, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    with pytest.raises(TokenRejected) as err:
        file_download.download_file(GATED_REPO, "config.json")
    assert "token (from HF_TOKEN) was rejected: it is wrong, expired or revoked" in str(err.value)


def test_saved_login_opens_the_gated_repo(hub_server, tmp_path):
    from models import auth

    from common.paths import data_paths

    auth.save_token(GOOD_TOKEN)  # checked with the Hub, then kept as a secret (no keyring here: a private file)
    secrets_file = data_paths().config / "secrets.json"
    assert GOOD_TOKEN in secrets_file.read_text()
    assert oct(secrets_file.stat().st_mode & 0o777) == "0o600"
    info = auth.find_token()
    assert info.source == "the token saved in LlamaDesk" and GOOD_TOKEN not in repr(info)
    path = file_download.download_file(GATED_REPO, "config.json")
    assert path.read_bytes() == served(hub_server, GATED_REPO, "config.json")
    with pytest.raises(auth.InvalidTokenError, match="rejected"):
        auth.save_token("hf_wrong")


def test_dropped_connection_resumes_with_range(hub_server, tmp_path):
    data = served(hub_server, GGUF_REPO, GGUF_MAIN)
    hub_server.drop_after(GGUF_MAIN, len(data) // 3, times=2)
    path = file_download.download_file(GGUF_REPO, GGUF_MAIN, models_dir=tmp_path, retry=NO_WAIT)
    assert path.read_bytes() == data
    ranges = hub_server.ranges_for(GGUF_MAIN)
    assert ranges[0] is None and len(ranges) == 3
    starts = [int(r[6:].split("-")[0]) for r in ranges[1:]]
    assert all(s > 0 for s in starts) and starts[0] >= len(data) // 3 - (1 << 20)


def test_backoff_delays_are_used_and_give_up_with_a_resumable_message(hub_server, tmp_path):
    waited = []
    policy = RetryPolicy(attempts=3, delays=(1.5, 3.0), wait=lambda s, h: waited.append(s))
    hub_server.drop_after(GGUF_MAIN, 100_000, times=10)
    with pytest.raises(file_download.DownloadError, match="failed after 3 attempts.*resume"):
        file_download.download_file(GGUF_REPO, GGUF_MAIN, models_dir=tmp_path, retry=policy)
    assert waited == [1.5, 3.0]
    final = tmp_path / "bartowski" / "Llama-3.2-1B-Instruct-GGUF" / GGUF_MAIN
    assert not final.exists() and final.with_name(GGUF_MAIN + ".part").stat().st_size == 100_000


def test_corrupted_byte_is_caught_by_sha256(hub_server, tmp_path):
    hub_server.corrupt(GGUF_MAIN, 123_456)
    with pytest.raises(file_download.HashMismatchError) as err:
        file_download.download_file(GGUF_REPO, GGUF_MAIN, models_dir=tmp_path, retry=NO_WAIT)
    assert "failed verification: its sha256 is" in str(err.value)
    assert "The corrupt download was deleted" in str(err.value)
    folder = tmp_path / "bartowski" / "Llama-3.2-1B-Instruct-GGUF"
    assert list(folder.iterdir()) == []


def test_not_enough_disk_is_refused_before_any_byte(hub_server, tmp_path):
    with pytest.raises(file_download.NotEnoughDiskSpace) as err:
        file_download.download_file(GGUF_REPO, GGUF_MAIN, models_dir=tmp_path, free_space=lambda p: 1_000_000)
    assert str(err.value).startswith("Not enough disk space: this download needs 4.2 MB but only 1.0 MB is free")
    assert hub_server.ranges_for(GGUF_MAIN) == []


def test_offline_mode_refuses_downloads_without_contacting_the_hub(hub_server, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub_env.OfflineError):
        file_download.download_file(GGUF_REPO, GGUF_MAIN)
    assert hub_server.requests == []


def test_cancel_mid_file_leaves_a_resumable_partial(hub_server, tmp_path):
    data = served(hub_server, GGUF_REPO, GGUF_MAIN)
    handle = TaskHandle(on_progress=lambda p: p.done >= 1 << 20 and handle.cancel())
    with pytest.raises(Cancelled):
        file_download.download_file(GGUF_REPO, GGUF_MAIN, models_dir=tmp_path, handle=handle, chunk_size=1 << 18)
    final = tmp_path / "bartowski" / "Llama-3.2-1B-Instruct-GGUF" / GGUF_MAIN
    assert not final.exists()
    done = final.with_name(GGUF_MAIN + ".part").stat().st_size
    assert 0 < done < len(data)
    path = file_download.download_file(GGUF_REPO, GGUF_MAIN, models_dir=tmp_path)
    assert path.read_bytes() == data
    assert hub_server.ranges_for(GGUF_MAIN)[-1] == f"bytes={done}-"


CHILD = """
import sys
from common.task import TaskHandle
from models.file_download import download_file
said = False
def report(p):
    global said
    if p.done >= 600_000 and not said:
        said = True
        print("WROTE", p.done, flush=True)
download_file(sys.argv[1], sys.argv[2], models_dir=sys.argv[3], handle=TaskHandle(report), chunk_size=65536)
print("FINISHED", flush=True)
"""


def test_killed_process_resumes_in_a_new_process(hub_server, tmp_path):
    data = served(hub_server, GGUF_REPO, GGUF_MAIN)
    hub_server.throttle_bps = 2_000_000  # slow enough that the child is mid-file when killed
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-c", CHILD, GGUF_REPO, GGUF_MAIN, str(tmp_path)],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = _readline_within(child, 60)
        assert line.startswith("WROTE"), line
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        child.stdout.close()
    final = tmp_path / "bartowski" / "Llama-3.2-1B-Instruct-GGUF" / GGUF_MAIN
    assert not final.exists()
    left = final.with_name(GGUF_MAIN + ".part").stat().st_size
    assert left >= 600_000
    hub_server.throttle_bps = None
    again = subprocess.run([sys.executable, "-c", CHILD, GGUF_REPO, GGUF_MAIN, str(tmp_path)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "FINISHED" in again.stdout, again.stderr
    assert final.read_bytes() == data
    resumed = hub_server.ranges_for(GGUF_MAIN)[-1]
    assert resumed is not None and int(resumed[6:].split("-")[0]) == left > 0


def _readline_within(proc, seconds):
    """Read one line from the child's stdout, or give up after ``seconds``."""
    out = []
    t = threading.Thread(target=lambda: out.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(seconds)
    return out[0] if out else ""


def test_download_benchmark_runs_on_a_small_file():
    out = subprocess.run([sys.executable, "bench/download.py", "--size-mb", "4", "--rounds", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode in (0, 1), out.stderr  # 1 = ratio below target; not a test of speed
    assert "ratio ours/plain" in out.stdout
