"""No Hub at all (no network, unknown host, closed port): one clear sentence, at once.

Every Hub call from the CLI and the window must fail on its first connection attempt
with the same sentence, no traceback and no retry lines; connection attempts are
counted (through ``socket.create_connection``, which httpx's transport calls).
"""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLOSED_PORT = "http://127.0.0.1:9"       # discard port: nothing listens, the connect is refused
UNKNOWN_HOST = "http://hub.invalid"     # RFC 2606: never resolves, answered at once without network

# Runs main.py's CLI with every connection attempt counted into the file named by argv[1].
COUNTING_MAIN = """
import atexit, socket, sys
count_file, sys.argv = sys.argv[1], ["main.py", *sys.argv[2:]]
attempts = []
real = socket.create_connection
def counting(address, *args, **kwargs):
    attempts.append(address)
    return real(address, *args, **kwargs)
socket.create_connection = counting
atexit.register(lambda: open(count_file, "w").write(str(len(attempts))))
import main
sys.exit(main.main())
"""


def unreachable(endpoint: str) -> str:
    return (f"Can't reach the Hugging Face Hub at {endpoint} (no network?). "
            "Models already on this computer still work.")


@pytest.fixture(params=[CLOSED_PORT, UNKNOWN_HOST], ids=["closed-port", "unknown-host"])
def no_hub(request, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", request.param)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return request.param


@pytest.mark.parametrize("args", [["search", "llama"], ["search", "--files", "meta-llama/Llama-3.2-1B"],
                                  ["download", "bartowski/Llama-3.2-1B-Instruct-GGUF"],
                                  ["download", "meta-llama/Llama-3.2-1B", "--convert"]],
                         ids=["search", "search-files", "download", "download-convert"])
def test_cli_says_the_hub_is_unreachable_after_one_attempt(no_hub, args, tmp_path):
    count_file = tmp_path / "attempts"
    out = subprocess.run([sys.executable, "-c", COUNTING_MAIN, str(count_file), *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert out.returncode == 1
    assert out.stderr == f"error: {unreachable(no_hub)}\n"      # no traceback, no retry lines
    assert out.stdout == ""
    assert int(count_file.read_text()) == 1


def test_the_default_hub_is_named_plainly(monkeypatch):
    from models.hub_errors import unreachable_message

    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert unreachable_message() == ("Can't reach the Hugging Face Hub (no network?). "
                                     "Models already on this computer still work.")


@pytest.fixture
def attempts(monkeypatch):
    """Connection attempts made from any thread of this process."""
    made = []
    lock = threading.Lock()
    real = socket.create_connection

    def counting(address, *args, **kwargs):
        with lock:
            made.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", counting)
    return made


def test_token_check_and_file_metadata_fail_fast(no_hub, attempts):
    from models import auth, file_download
    from models.hub_errors import HubUnreachable

    for call in (lambda: auth.whoami("hf_x"), lambda: file_download.resolve_remote("a/b", "model.gguf")):
        with pytest.raises(HubUnreachable) as err:
            call()
        assert str(err.value) == unreachable(no_hub)
    assert len(attempts) == 2


def test_window_search_and_catalog_download_say_so(qtbot, no_hub, attempts):
    from app.models_manager.discover_tab import DiscoverTab

    tab = DiscoverTab()
    qtbot.addWidget(tab)
    tab.search("llama")
    qtbot.waitUntil(lambda: tab.status.text() != "Searching…", timeout=10000)
    assert tab.status.text() == unreachable(no_hub)
    assert len(attempts) == 1
    tab.show_repo("bartowski/Llama-3.2-1B-Instruct-GGUF")
    qtbot.waitUntil(lambda: tab.status.text() == unreachable(no_hub) and tab.repo_label.text() == "",
                    timeout=10000)
    catalog = tab.catalog
    catalog.download_button.click()
    qtbot.waitUntil(lambda: catalog.download_button.isEnabled(), timeout=10000)
    assert catalog.status.text() == unreachable(no_hub)
    assert len(attempts) == 3


def test_hub_client_log_goes_to_the_log_file_not_the_terminal(capfd):
    """huggingface_hub logs each retry it makes (5xx, 429, a dropped read) as a warning."""
    from huggingface_hub.utils import logging as hf_logging

    from common.logs import setup_logging
    from models import hub_http

    log_file = setup_logging()
    hub_http.install()
    hf_logging.get_logger("huggingface_hub.utils._http").warning("Retrying in 1s [Retry 1/5].")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert capfd.readouterr().err == ""
    assert "Retrying in 1s [Retry 1/5]." in log_file.read_text(encoding="utf-8")


def test_a_download_whose_server_vanishes_says_so(no_hub, attempts, tmp_path):
    """The Hub answered; then the file's server cannot be reached: the transfer's own
    retries (worth it for a dropped connection) end in a sentence, not an errno."""
    from models import file_download
    from models.file_download import RetryPolicy

    remote = file_download.RemoteFile("a/b", "model.gguf", "main", "c" * 40, f"{no_hub}/model.gguf", 10,
                              "0" * 64, None)
    with pytest.raises(file_download.DownloadError) as err:
        file_download.download_file("a/b", "model.gguf", remote=remote, models_dir=tmp_path,
                            retry=RetryPolicy(attempts=2, delays=(0.0,)))
    assert str(err.value) == ("Downloading model.gguf failed after 2 attempts (the server could not be "
                              "reached: no network?). Run it again to resume from 0 B.")
    assert len(attempts) == 2
