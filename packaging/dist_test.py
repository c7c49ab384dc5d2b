"""Check the bundle the way a user's machine runs it (make dist-test).

    python packaging/dist_test.py [dist]

The archive from ``make dist`` is unpacked into a temporary folder and every run of it
goes through ``env -i`` with only HOME, a fresh LLAMADESK_HOME, DISPLAY (the window)
or QT_QPA_PLATFORM=offscreen (the commands), HF_ENDPOINT for the download, and a PATH
holding one empty folder: no Python, no .venv, no source tree, started from another
working directory. This script itself runs in the development .venv only to make the
inputs (the tiny test checkpoint, the local Hub stand-in) and to drive and inspect.

Checks: --version, --help and every command's --help; paths; models lists the demo
model; chat --model demo streams a reply; convert of the tiny checkpoint to Q4_K_M
verifies (through the quantizer's worker process); download from the Hub stand-in;
serve answers an OpenAI request; the window opens under Xvfb, loads the demo model
and answers a message typed with xdotool (read back from the chat database); chats
and settings land in LLAMADESK_HOME and nothing in HOME; no file from the source tree
or .venv is mapped into the running window; the desktop entry installs (Linux).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))

import platforms  # noqa: E402

PROMPT = "Name three colours."
WINDOW_MESSAGE = "Say hello in one short sentence."


class Failed(Exception):
    pass


def check(ok: bool, what: str) -> None:
    if not ok:
        raise Failed(what)


class Bundle:
    """The unpacked bundle and the clean environment it runs in."""

    def __init__(self, work: Path, platform_: platforms.Platform, folder: Path):
        self.work = work
        self.platform = platform_
        self.folder = folder
        self.program = platform_.program(folder)
        self.home = work / "home"
        self.ld_home = work / "llamadesk-home"
        self.cwd = work / "somewhere-else"
        self.empty_bin = work / "empty-bin"
        for p in (self.home, self.cwd, self.empty_bin):
            p.mkdir(parents=True, exist_ok=True)
        self.started = 0

    def env(self, **extra: str) -> dict[str, str]:
        kept = {k: os.environ[k] for k in self.platform.kept_environment if k in os.environ}
        return {**kept, "HOME": str(self.home), "LLAMADESK_HOME": str(self.ld_home),
                "PATH": str(self.empty_bin), **extra}

    def command(self, program: Path, args, extra: dict) -> tuple[list[str], dict | None]:
        """``env -i K=V ... PROGRAM ARGS`` where there is env(1); else the same environment, passed."""
        env = self.env(**extra)
        if os.name == "posix":
            return ["env", "-i", *[f"{k}={v}" for k, v in env.items()], str(program), *args], None
        return [str(program), *args], env

    def run(self, *args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
        extra.setdefault("QT_QPA_PLATFORM", "offscreen")
        cmd, env = self.command(self.program, args, extra)
        return subprocess.run(cmd, env=env, cwd=self.cwd, capture_output=True, text=True, timeout=timeout)

    def popen(self, *args: str, window: bool = False, **extra: str) -> subprocess.Popen:
        """Started in the background; its stderr goes to a file (``stderr_text(proc)``)."""
        cmd, env = self.command(self.platform.program(self.folder, window) if window else self.program, args, extra)
        self.started += 1
        path = self.work / f"stderr-{self.started}.txt"
        with open(path, "wb") as err:
            proc = subprocess.Popen(cmd, env=env, cwd=self.cwd, stdout=subprocess.PIPE, stderr=err)
        proc.stderr_path = path
        return proc


def stderr_text(proc) -> str:
    return proc.stderr_path.read_text(errors="replace")[-1500:]


def find_archive(dist: Path, platform_: platforms.Platform) -> Path:
    from common.version import __version__

    name = platform_.archive_name(__version__)
    for suffix in (".tar.gz", ".zip"):
        if (dist / f"{name}{suffix}").is_file():
            return dist / f"{name}{suffix}"
    raise Failed(f"no {name}.tar.gz or .zip in {dist}: run `make dist` first")


def unpack(archive: Path, into: Path) -> Path:
    into.mkdir(parents=True)
    if archive.name.endswith(".tar.gz"):
        subprocess.run(["tar", "-xzf", str(archive), "-C", str(into)], check=True)
    elif sys.platform == "darwin":
        subprocess.run(["ditto", "-x", "-k", str(archive), str(into)], check=True)
    else:
        shutil.unpack_archive(str(archive), str(into))
    return into


# --- the inputs, made in the development environment --------------------------------------
def make_checkpoint(dest: Path) -> Path:
    from tests.fixtures.tiny_llama import make_tiny_llama, make_tokenizer

    tokenizer = make_tokenizer(768)[0]
    return make_tiny_llama(dest, tokenizer=tokenizer).path


def start_hub(work: Path, checkpoint: Path):
    from tests.fixtures.hub_server import HubServer, make_default_repos

    (work / "hub-files").mkdir()
    server = HubServer()
    for repo in make_default_repos(work / "hub-files", checkpoint)():
        server.add_repo(repo)
    return server.start()


# --- the checks -----------------------------------------------------------------------------
def check_version_and_help(b: Bundle) -> str:
    from cli.parser import COMMANDS
    from common.version import __version__

    out = b.run("--version")
    check(out.returncode == 0 and out.stdout.strip() == f"LlamaDesk {__version__}",
          f"--version said {out.stdout.strip()!r} {out.stderr.strip()!r}")
    out = b.run("--help")
    check(out.returncode == 0, f"--help failed: {out.stderr}")
    missing = [c.name for c in COMMANDS if c.name not in out.stdout]
    check(not missing, f"--help does not list {missing}")
    for c in COMMANDS:
        sub = b.run(c.name, "--help")
        check(sub.returncode == 0 and "usage:" in sub.stdout, f"{c.name} --help failed: {sub.stderr[-500:]}")
    return f"LlamaDesk {__version__}; --help lists and runs {len(COMMANDS)} commands"


def check_paths_and_models(b: Bundle) -> str:
    out = b.run("paths")
    check(out.returncode == 0, f"paths failed: {out.stderr}")
    lines = [ln for ln in out.stdout.splitlines() if ":" in ln]
    outside = [ln for ln in lines if "/" in ln and str(b.ld_home) not in ln]
    check(not outside, f"paths outside LLAMADESK_HOME: {outside}")
    out = b.run("models")
    check(out.returncode == 0 and "SmolLM2" in out.stdout, f"models does not list the demo model: {out.stdout}{out.stderr}")
    return "every folder under LLAMADESK_HOME; models lists the demo model"


def check_chat_streams(b: Bundle) -> str:
    proc = b.popen("chat", "--model", "demo", "--prompt", PROMPT, "--max-tokens", "32", "--seed", "1",
                   "--temperature", "0", QT_QPA_PLATFORM="offscreen")
    chunks, started = [], time.monotonic()
    first = None
    while True:
        data = os.read(proc.stdout.fileno(), 4096)
        if not data:
            break
        first = first or time.monotonic() - started
        chunks.append(data)
    code = proc.wait(timeout=60)
    err = stderr_text(proc)
    reply = b"".join(chunks).decode(errors="replace").strip()
    check(code == 0 and reply, f"chat --model demo: exit {code}, reply {reply!r}, {err[-800:]}")
    check(len(chunks) >= 2, f"the reply came in one piece, not streamed: {reply!r}")
    return f"{len(chunks)} pieces, first after {first:.1f} s: {reply[:60]!r}"


def check_convert(b: Bundle, checkpoint: Path) -> str:
    out_file = b.work / "converted" / "tiny.Q4_K_M.gguf"
    out_file.parent.mkdir()
    out = b.run("convert", str(checkpoint), "--out", str(out_file), "--type", "q4_k_m", "--threads", "2")
    text = out.stdout + out.stderr
    check(out.returncode == 0 and out_file.is_file(), f"convert failed (exit {out.returncode}): {text[-1500:]}")
    check("verif" in text.lower(), f"convert did not report a verification: {text[-800:]}")
    return f"{out_file.name}, {out_file.stat().st_size // 1024} KiB, verified"


def check_download(b: Bundle, hub) -> str:
    from tests.fixtures.hub_server import GGUF_MAIN, GGUF_REPO

    out = b.run("download", GGUF_REPO, "--include", "*Q4_K_M*.gguf", HF_ENDPOINT=hub.url)
    check(out.returncode == 0, f"download failed: {out.stdout[-800:]}{out.stderr[-800:]}")
    got = list((b.ld_home / "models").rglob(Path(GGUF_MAIN).name))
    check(len(got) == 1, f"{GGUF_MAIN} is not in the models folder: {out.stdout}")
    served = [r for r in hub.requests if r.path.endswith(GGUF_MAIN)]
    check(bool(served), "the file did not come from the Hub stand-in")
    return f"{GGUF_REPO}/{GGUF_MAIN} -> {got[0].relative_to(b.ld_home)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_serve(b: Bundle) -> str:
    port = free_port()
    proc = b.popen("serve", "--model", "demo", "--port", str(port), "--parallel", "1", "--n-ctx", "2048")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            check(proc.poll() is None, f"serve exited {proc.returncode}: {stderr_text(proc)}")
            try:
                models = json.loads(urllib.request.urlopen(url + "/v1/models", timeout=2).read())
                break
            except OSError:
                check(time.monotonic() < deadline, "serve did not answer within 120 s")
                time.sleep(0.2)
        body = json.dumps({"model": models["data"][0]["id"], "messages": [{"role": "user", "content": PROMPT}],
                           "max_tokens": 12, "temperature": 0}).encode()
        req = urllib.request.Request(url + "/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(req, timeout=120).read())
        text = answer["choices"][0]["message"]["content"]
        check(bool(text.strip()), f"serve answered nothing: {answer}")
    finally:
        proc.send_signal(signal.SIGTERM)   # on Windows: TerminateProcess
        code = proc.wait(timeout=30)
    check(code == 0 or os.name != "posix", f"serve did not stop cleanly on SIGTERM (exit {code})")
    return f"OpenAI chat completion {text[:40]!r}; stopped on SIGTERM (exit {code})"


# --- the window ---------------------------------------------------------------------------------
class Xvfb:
    def __enter__(self):
        r, w = os.pipe()
        self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                                     pass_fds=(w,), stderr=subprocess.DEVNULL)
        os.close(w)
        with os.fdopen(r) as f:
            self.display = ":" + f.readline().strip()
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def tool(self, *args: str, timeout: float = 30) -> str:
        return subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": self.display},
                              capture_output=True, text=True, timeout=timeout).stdout.strip()


def wait_for(what: str, probe, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failed(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def chat_rows(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT role, content, state FROM messages ORDER BY id").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []


def foreign_mappings(pid: int, bundle_folder: Path) -> list[str]:
    """Files mapped into the process from the source tree or the development .venv."""
    bad = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(None, 5)
        path = parts[5] if len(parts) == 6 else ""
        if path.startswith(str(ROOT)) or ".venv" in path or "/site-packages/" in path:
            bad.append(path)
    return sorted(set(bad))


def check_window(b: Bundle, screenshot: Path) -> str:
    db = b.ld_home / "data" / "chats.sqlite3"
    with Xvfb() as x:
        started = time.monotonic()
        proc = b.popen(window=True, DISPLAY=x.display)
        try:
            win = wait_for("the window", lambda: x.tool("search", "--onlyvisible", "--name", "LlamaDesk")
                           .split("\n")[0], 60, 0.05)
            shown = time.monotonic() - started
            check(proc.poll() is None, f"the window closed: {stderr_text(proc)}")
            x.tool("windowfocus", "--sync", win)
            geometry = dict(line.split("=", 1) for line in x.tool("getwindowgeometry", "--shell", win).splitlines())
            width, height = int(geometry["WIDTH"]), int(geometry["HEIGHT"])

            def sent():
                # As a person would: click into the message box at the bottom, type, press
                # Enter. Enter sends once the model has loaded; before that the text stays
                # in the box, so each try replaces it and presses Enter again.
                if any(r[0] == "user" for r in chat_rows(db)):
                    return True
                x.tool("mousemove", "--window", win, str(width // 2), str(height - 100), "click", "1")
                x.tool("key", "ctrl+a", "BackSpace")
                x.tool("type", "--delay", "15", WINDOW_MESSAGE)
                x.tool("key", "Return")
                return False

            wait_for("the typed message in the chat database", sent, 120, 0.5)
            loaded = time.monotonic() - started
            typed = [r[1] for r in chat_rows(db) if r[0] == "user"]
            check(typed == [WINDOW_MESSAGE], f"the chat database has {typed}, not the typed message")

            partial = set()   # lengths of the reply seen while it was still streaming

            def replied():
                rows = [r for r in chat_rows(db) if r[0] == "assistant"]
                if rows and rows[-1][2] == "streaming":
                    partial.add(len(rows[-1][1]))
                return rows[-1] if rows and rows[-1][1].strip() and rows[-1][2] != "streaming" else None

            reply = wait_for("a finished reply in the chat database", replied, 180, 0.3)
            time.sleep(0.5)   # let the last repaint land before the picture
            subprocess.run(["import", "-window", win, str(screenshot)],
                           env={**os.environ, "DISPLAY": x.display}, check=True, timeout=30)
            foreign = foreign_mappings(proc.pid, b.folder) if sys.platform.startswith("linux") else []
            check(not foreign, f"the window uses files from outside the bundle: {foreign[:5]}")
        finally:
            x.tool("key", "ctrl+q")
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(timeout=20)
    return (f"visible after {shown:.1f} s, message sent (model loaded) after {loaded:.1f} s; "
            f"reply {reply[1][:50]!r} ({reply[2]}; seen streaming at {len(partial)} lengths first)")


def check_window_starts_offscreen(b: Bundle) -> str:
    """Where there is no X server to drive: the window starts (Qt's offscreen platform),
    opens the chats and stays up until it is closed."""
    db = b.ld_home / "data" / "chats.sqlite3"
    started = time.monotonic()
    proc = b.popen(window=True, QT_QPA_PLATFORM="offscreen")
    try:
        wait_for("the window's chat database", lambda: db.is_file() or proc.poll() is not None, 120)
        check(proc.poll() is None, f"the window exited {proc.returncode}: {stderr_text(proc)}")
        up = time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return f"running with its chats open after {up:.1f} s"


def check_data_locations(b: Bundle) -> str:
    # settings.json is written once a setting changes; the window's own state on every close
    want = [b.ld_home / "data" / "chats.sqlite3", b.ld_home / "config" / "window.ini"]
    missing = [str(p.relative_to(b.ld_home)) for p in want if not p.is_file()]
    check(not missing, f"not in LLAMADESK_HOME: {missing}")
    stray = [str(p.relative_to(b.home)) for p in b.home.rglob("*") if "llamadesk" in p.name.lower()]
    check(not stray, f"LlamaDesk wrote into HOME despite LLAMADESK_HOME: {stray}")
    out = b.run("chats")
    check(out.returncode == 0 and out.stdout.strip(), f"chats lists nothing: {out.stderr}")
    found = sorted(str(p.relative_to(b.ld_home)) for p in b.ld_home.rglob("*") if p.is_file())
    return f"under LLAMADESK_HOME: {', '.join(found[:8])}; nothing in HOME; `chats` lists the window's chat"


def check_desktop_entry(b: Bundle) -> str:
    out = subprocess.run(["env", "-i", f"HOME={b.home}", "PATH=/usr/bin:/bin", "sh",
                          str(b.folder / "install-desktop-entry.sh")], capture_output=True, text=True, cwd=b.cwd)
    check(out.returncode == 0, f"install-desktop-entry.sh failed: {out.stderr}")
    entry = b.home / ".local/share/applications/llamadesk.desktop"
    text = entry.read_text()
    check(f'Exec="{b.program}"' in text, f"the menu entry does not run the unpacked program: {text}")
    check((b.home / ".local/share/icons/hicolor/256x256/apps/llamadesk.png").is_file(), "no icon installed")
    if shutil.which("desktop-file-validate"):
        v = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        check(v.returncode == 0, f"desktop-file-validate: {v.stdout}{v.stderr}")
    subprocess.run(["env", "-i", f"HOME={b.home}", "PATH=/usr/bin:/bin", "sh",
                    str(b.folder / "remove-desktop-entry.sh")], check=True, capture_output=True)
    check(not entry.exists(), "remove-desktop-entry.sh left the entry")
    return "install-desktop-entry.sh writes the entry and icons; remove-desktop-entry.sh takes them away"


def main(argv: list[str]) -> int:
    platform_ = platforms.current()
    dist = Path(argv[0] if argv else ROOT / "dist").resolve()
    keep = os.environ.get("KEEP_DIST_TEST") == "1"
    work = Path(tempfile.mkdtemp(prefix="llamadesk-dist-test-"))
    began = time.monotonic()
    failures = 0
    hub = None
    try:
        archive = find_archive(dist, platform_)
        t = time.monotonic()
        unpack(archive, work / "unpacked")
        folder = work / "unpacked" / platforms.FOLDER
        if platform_.app_bundle:
            folder = work / "unpacked"
        b = Bundle(work, platform_, folder)
        print(f"unpacked {archive.name} into {work / 'unpacked'} in {time.monotonic() - t:.1f} s")
        print(f"program: {b.program}")
        print("environment: env -i " + " ".join(f"{k}={v}" for k, v in b.env(QT_QPA_PLATFORM="offscreen").items())
              + f"; working directory {b.cwd}")
        t = time.monotonic()
        checkpoint = make_checkpoint(work / "tiny-llama")
        hub = start_hub(work, checkpoint)
        print(f"inputs: tiny checkpoint, Hub stand-in at {hub.url} ({time.monotonic() - t:.1f} s)")
        steps = [
            ("version and help", lambda: check_version_and_help(b)),
            ("paths and models", lambda: check_paths_and_models(b)),
            ("chat --model demo", lambda: check_chat_streams(b)),
            ("convert to Q4_K_M", lambda: check_convert(b, checkpoint)),
            ("download from the Hub stand-in", lambda: check_download(b, hub)),
            ("serve", lambda: check_serve(b)),
        ]
        if platform_.name == "linux" and shutil.which("Xvfb") and shutil.which("xdotool"):
            steps.append(("the window", lambda: check_window(b, dist / "dist-test-window.png")))
            steps.append(("data in LLAMADESK_HOME", lambda: check_data_locations(b)))
            steps.append(("desktop entry", lambda: check_desktop_entry(b)))
        else:
            steps.append(("the window (offscreen; driving it needs Linux with Xvfb and xdotool)",
                          lambda: check_window_starts_offscreen(b)))
        for name, step in steps:
            t = time.monotonic()
            try:
                detail = step()
                print(f"ok    {name} ({time.monotonic() - t:.1f} s): {detail}", flush=True)
            except (Failed, subprocess.SubprocessError, OSError) as exc:
                failures += 1
                print(f"FAIL  {name} ({time.monotonic() - t:.1f} s): {exc}", flush=True)
    except (Failed, subprocess.SubprocessError, OSError) as exc:
        print(f"FAIL  {exc}")
        failures += 1
    finally:
        if hub is not None:
            hub.stop()
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"dist-test: {'all checks passed' if not failures else f'{failures} failed'} "
          f"in {time.monotonic() - began:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
