"""No traceback for a user error, anywhere in the CLI: one handler at the top of main.py.

A known error prints one sentence and exits 1; a bug prints one sentence and where
its traceback was logged (exit 70; --debug or LLAMADESK_DEBUG=1 also prints it); a
full disk says "disk full"; Ctrl+C exits 130; an export that fails leaves no file.
"""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from common.paths import data_paths

ROOT = Path(__file__).resolve().parents[1]


def run_main(*args, env_extra=None, stdout=subprocess.PIPE, preexec_fn=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=120, preexec_fn=preexec_fn)


def run_with_broken_command(exc_expr: str, *extra_args, env_extra=None):
    """main.main() on `paths`, whose run() raises ``exc_expr``: a stand-in for a bug."""
    code = ("import sys, main, cli.paths_cmd as p\n"
            f"def boom(args):\n    raise {exc_expr}\n"
            "p.run = boom\n"
            f"sys.exit(main.main([*{list(extra_args)!r}, 'paths']))\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_known_errors_are_one_sentence_and_exit_1(tmp_path):
    for args, expected in [
        (("chat", "--model", "no-such-model", "--prompt", "x"), "No model file 'no-such-model'"),
        (("chats", "import", str(tmp_path / "missing.json")), "missing.json"),
        (("chats", "export", "-o", str(tmp_path / "no-folder" / "out.md")), "No such file or directory"),
    ]:
        r = run_main(*args)
        assert r.returncode == 1, (args, r.stderr)
        assert expected in r.stderr
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_bug_says_where_its_traceback_was_logged():
    r = run_with_broken_command("KeyError('boom')")
    assert r.returncode == 70
    assert "Traceback" not in r.stderr
    log = data_paths().logs / "errors.log"
    assert r.stderr.strip() == (f"error: something went wrong inside LlamaDesk (KeyError: 'boom'); "
                                f"the full report is in {log}.")
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "KeyError: 'boom'" in text


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_prints_the_traceback(how):
    if how == "flag":
        r = run_with_broken_command("KeyError('boom')", "--debug")
    else:
        r = run_with_broken_command("KeyError('boom')", env_extra={"LLAMADESK_DEBUG": "1"})
    assert r.returncode == 70
    assert "Traceback (most recent call last)" in r.stderr and "KeyError: 'boom'" in r.stderr


def test_a_user_error_from_any_layer_is_one_sentence():
    r = run_with_broken_command("__import__('engine.backend').backend.EngineError('the model is gone')")
    assert r.returncode == 1
    assert r.stderr.strip() == "error: the model is gone"


def test_ctrl_c_exits_130_without_a_traceback():
    r = run_with_broken_command("KeyboardInterrupt")
    assert r.returncode == 130
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_to_a_full_disk_says_disk_full(tmp_path):
    from chat.store import ChatStore

    with ChatStore.open() as store:
        conv = store.create(title="Long")
        store.add_user_message(conv, "x" * 200_000)
    with open("/dev/full", "w") as full:
        r = run_main("chats", "export", stdout=full)
    assert r.returncode == 1
    assert "disk full" in r.stderr
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr


def _small_file_limit():
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


@pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE is POSIX")
def test_an_export_that_cannot_be_written_leaves_nothing_behind(tmp_path):
    from chat.store import ChatStore

    with ChatStore.open() as store:
        conv = store.create(title="Long")
        store.add_user_message(conv, "x" * 300_000)
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    (out_dir / "chats.md").write_text("the previous export\n")
    r = run_main("chats", "export", "-o", str(out_dir / "chats.md"), preexec_fn=_small_file_limit)
    assert r.returncode == 1
    assert r.stderr.strip() == f"error: File too large: {out_dir / 'chats.md'}"
    assert sorted(p.name for p in out_dir.iterdir()) == ["chats.md"]   # no temporary file
    assert (out_dir / "chats.md").read_text() == "the previous export\n"


def test_atomic_write_on_a_full_disk_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    from common import atomic
    from common.errors import user_message

    target = tmp_path / "settings.json"
    target.write_text("old")

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "write", full)
    with pytest.raises(OSError) as info:
        atomic.atomic_write_text(target, "new" * 1000)
    assert user_message(info.value) == f"disk full writing {target}: free some space and try again."
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]
    assert target.read_text() == "old"


def test_a_private_file_is_created_private_whatever_the_umask(tmp_path):
    from common.atomic import atomic_write_text

    old = os.umask(0)
    try:
        path = atomic_write_text(tmp_path / "secret", "s3cret", mode=0o600)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o600
