"""`llamadesk chat`: talk to a model from the terminal (one-shot with --prompt, else interactive)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from models.bundled import DEMO_ALIASES

    parser.add_argument("--model", default=None,
                        help=f"a GGUF path, a file name in the models folder, {DEMO_ALIASES[0]} for the "
                             "demo model that comes with LlamaDesk, or with --remote the model id "
                             "(with --continue: the window's model by default)")
    parser.add_argument("--continue", dest="continue_id", nargs="?", const="last", default=None,
                        metavar="ID", help="continue a stored conversation (the most recent by default) "
                                           "and save the new turns to it")
    parser.add_argument("--system", default=None, help="system prompt (default: none)")
    parser.add_argument("--prompt", default=None, help="ask once and exit (otherwise interactive)")
    parser.add_argument("--remote", default=None, metavar="URL",
                        help="an OpenAI-compatible server (key from LLAMADESK_API_KEY)")
    # Unset flags take the value from the settings file the window writes (Settings).
    parser.add_argument("--n-ctx", type=int, default=None, help="context window (default: from Settings)")
    parser.add_argument("--gpu-layers", default=None, help="layers to offload: a number, or auto (default: from Settings)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: from Settings)")
    parser.add_argument("--max-tokens", type=int, default=None, help="longest reply (default: from Settings)")
    parser.add_argument("--temperature", type=float, default=None, help="(default: from Settings)")
    parser.add_argument("--seed", type=int, default=None, help="(default: from Settings)")
    parser.add_argument("--stats", choices=["text", "json"], default=None,
                        help="print reply statistics to stderr (json: one object on the last line)")


def resolve_model(name: str, settings=None) -> Path:
    """A model named on the command line: a path, a file in the models folder chosen in
    Settings (exact name, name without .gguf, or the one file containing it), or the demo."""
    from common.settings import load_settings
    from models.choices import models_folder

    path = Path(name).expanduser()
    if path.is_file():
        return path
    models = models_folder(settings or load_settings())
    for candidate in (models / name, models / f"{name}.gguf"):
        if candidate.is_file():
            return candidate
    matches = sorted(models.rglob(f"*{name}*.gguf")) if models.is_dir() else []
    if len(matches) == 1:
        return matches[0]
    from models.bundled import DEMO_ALIASES, bundled_model_path

    bundled = bundled_model_path()
    if bundled and name in (*DEMO_ALIASES, bundled.name, bundled.stem):   # as `models` lists it
        return bundled
    raise FileNotFoundError(f"No model file {name!r} (looked for a path, then in {models}).")


def run_options(args, settings):
    """The settings with this run's flags laid over them: (LoadOptions, GenerationParams)."""
    from dataclasses import replace

    from common.errors import UserError

    load, params = settings.load, settings.params
    if getattr(args, "n_ctx", None) is not None:
        load = replace(load, n_ctx=args.n_ctx)
    if getattr(args, "gpu_layers", None) is not None:
        if args.gpu_layers != "auto" and not args.gpu_layers.isdigit():
            raise UserError(f"--gpu-layers must be a number or auto; it is {args.gpu_layers!r}.")
        load = replace(load, gpu_layers=args.gpu_layers if args.gpu_layers == "auto" else int(args.gpu_layers))
    if getattr(args, "threads", None) is not None:
        load = replace(load, threads=args.threads)
    for name in ("max_tokens", "temperature", "seed"):
        if getattr(args, name, None) is not None:
            params = replace(params, **{name: getattr(args, name)})
    return load, params


def open_model(args, load):
    """The loaded backend this run chats with: --remote's server, else the model file."""
    from dataclasses import replace

    from engine import open_backend

    if args.remote:
        import os

        return open_backend(args.remote, replace(load, n_ctx=args.n_ctx or 0),
                            api_key=os.environ.get("LLAMADESK_API_KEY"), remote_model=args.model)
    return open_backend(resolve_model(args.model), load)


def print_stats(stats, mode: str) -> None:
    if mode == "json":
        print(json.dumps({"ttft_s": stats.ttft_s, "prompt_tokens": stats.prompt_tokens,
                          "prompt_evaluated": stats.prompt_evaluated, "prompt_tps": stats.prompt_tps,
                          "gen_tokens": stats.gen_tokens, "gen_tps": stats.gen_tps,
                          "ctx_used": stats.ctx_used, "n_ctx": stats.n_ctx,
                          "gpu_layers": stats.gpu_layers, "stop_reason": stats.stop_reason,
                          "dropped": list(stats.dropped),
                          "snapshot_used": "snapshot" in stats.extra,
                          "snapshot": stats.extra.get("snapshot")}), file=sys.stderr)
    else:
        ttft = f"{stats.ttft_s * 1000:.0f} ms" if stats.ttft_s is not None else "-"
        fmt = lambda v: f"{v:.1f}" if v else "-"  # noqa: E731
        print(f"[first token {ttft}, prompt {stats.prompt_tokens} tokens ({fmt(stats.prompt_tps)} tok/s), "
              f"reply {stats.gen_tokens} tokens ({fmt(stats.gen_tps)} tok/s), "
              f"context {stats.ctx_used}/{stats.n_ctx}]", file=sys.stderr)


class _CtrlCStopsTheReply:
    """While a reply streams, Ctrl+C cancels it (the engine stops within a token) instead of
    ending the program; a second Ctrl+C before it has stopped ends the program as usual."""

    def __init__(self, handle):
        self.handle = handle

    def _on_sigint(self, signum, frame) -> None:
        if self.handle.cancelled:
            raise KeyboardInterrupt
        self.handle.cancel()

    def __enter__(self):
        import signal

        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        signal.signal(signal.SIGINT, self._previous)


class _Prompt:
    """Reads the user's lines from standard input; a Ctrl+C while waiting ends the session.

    Waiting is a ``select`` on standard input and on a signal wake-up pipe, so a Ctrl+C is
    seen even when it lands just before the read starts, or on another thread (llama.cpp's
    or BLAS's), where it would not interrupt a blocking ``input()``. Lines are read from the
    file descriptor directly, so no line sits unseen in Python's buffer. Elsewhere than
    POSIX, ``input()``.
    """

    def __init__(self):
        import os

        self._buf = b""
        self._eof = False
        try:
            self._fd = sys.stdin.fileno()
        except (AttributeError, OSError, ValueError):   # no real standard input: input() says EOF
            self._fd = None
        self._posix = os.name == "posix" and self._fd is not None
        if self._posix:
            import signal

            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
            self._previous_wakeup = signal.set_wakeup_fd(self._wake_w)

    def close(self) -> None:
        if self._posix:
            import os
            import signal

            signal.set_wakeup_fd(self._previous_wakeup)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def read(self) -> Optional[str]:
        """The next line, or None to end the session (Ctrl+D, or Ctrl+C at the prompt)."""
        try:
            sys.stdout.write("> ")
            sys.stdout.flush()
            line = self._readline() if self._posix else input()
        except (EOFError, KeyboardInterrupt, RuntimeError):   # RuntimeError: no sys.stdin at all
            line = None
        if line is None:
            print()
        return line

    def _readline(self) -> Optional[str]:
        import os
        import select

        while b"\n" not in self._buf and not self._eof:
            readable, _, _ = select.select([self._fd, self._wake_r], [], [])
            if self._wake_r in readable:
                # A signal came: Python runs its handler (KeyboardInterrupt for Ctrl+C)
                # before the loop waits again.
                try:
                    os.read(self._wake_r, 512)
                except BlockingIOError:
                    pass
                continue
            chunk = os.read(self._fd, 65536)
            self._eof = not chunk
            self._buf += chunk
        if not self._buf:
            return None
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode(sys.stdin.encoding or "utf-8", "replace").rstrip("\r")


def _continuing(args, settings):
    """With --continue: the stored conversation, the window's model and window settings
    filled in where not given (None otherwise); raises ContinueError."""
    if args.continue_id is None:
        return None
    from cli.chat_continue import ContinueError, StoredConversation
    from models.choices import remote_name

    if args.remote:
        raise ContinueError("--continue works with a local model, not with --remote")
    conv = StoredConversation.open(args.continue_id, args.system or settings.system_prompt)
    if args.model is None:
        args.model = settings.active_model or conv.conversation.model
        if not args.model or remote_name(args.model) is not None:
            conv.close()
            raise ContinueError("no local model to continue with: pass --model")
    args.kv_cache_mb = settings.kv_cache_mb   # n_ctx and GPU layers are the window's too (run_options)
    return conv


def run(args: argparse.Namespace) -> int:
    from cli.chat_continue import ContinueError, describe
    from common.task import TaskHandle
    from engine.backend import EngineError
    from common.settings import load_settings
    from engine.types import ChatMessage, length_note

    settings = load_settings()
    load, params = run_options(args, settings)
    try:
        stored = _continuing(args, settings)
    except ContinueError as exc:
        print(f"error: {exc}.", file=sys.stderr)
        return 1
    if args.model is None:
        print("error: --model is required (or --continue a stored conversation).", file=sys.stderr)
        return 2
    try:
        backend = open_model(args, load)
    except (EngineError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if stored is not None:
            stored.close()
        return 1
    if getattr(backend, "plan_text", "") and args.stats != "json":
        print(backend.plan_text, file=sys.stderr)
    history = [ChatMessage("system", args.system)] if args.system else []
    if stored is not None:
        history = stored.messages()
        budget = getattr(args, "kv_cache_mb", None)
        backend.enable_snapshots(disk_budget=None if budget is None else budget << 20)
        backend.conversation = str(stored.id)
        describe(stored.conversation, sum(1 for m in history if m.role != "system"))
    interactive = args.prompt is None
    if interactive and sys.stdin is not None and sys.stdin.isatty():
        print("(Ctrl+C stops a reply; Ctrl+D or Ctrl+C at the prompt ends the chat)", file=sys.stderr)
    prompt = _Prompt() if interactive else None
    reported = 0          # bad saved caches already reported
    try:
        while True:
            if interactive:
                text = prompt.read()
                if text is None:
                    return 0
                if not text.strip():
                    continue
            else:
                text = args.prompt
            history.append(ChatMessage("user", text))
            reply = []
            handle = TaskHandle()
            if stored is not None:
                stored.begin_turn(text, backend.name, params.to_dict())
            try:
                with _CtrlCStopsTheReply(handle):
                    for piece in backend.stream_chat(history, params, handle):
                        reply.append(piece)
                        if stored is not None:
                            stored.append(piece)
                        sys.stdout.write(piece)
                        sys.stdout.flush()
            except EngineError as exc:
                history.pop()
                if stored is not None:
                    stored.end_turn("error", {"error": str(exc)})
                print(f"\nerror: {exc}", file=sys.stderr)
                if not interactive:
                    return 1
                continue
            sys.stdout.write("\n")
            sys.stdout.flush()
            if stored is not None:
                last = backend.last_stats
                stored.end_turn("cancelled" if handle.cancelled else "complete",
                                last.to_dict() if last is not None else None)
                for name, why in backend.snapshots.removed[reported:]:
                    print(f"[a saved cache of this conversation could not be used ({why}): it was "
                          "removed and the history read again]", file=sys.stderr)
                reported = len(backend.snapshots.removed)
                backend.save_snapshot()
            if handle.cancelled and not reply:
                history.pop()   # stopped before a word: as if it was never asked
            else:
                history.append(ChatMessage("assistant", "".join(reply)))
            if handle.cancelled:
                note = ("[reply stopped; what was written is kept]" if reply
                        else "[reply stopped before it began]")
                print(note if interactive else "interrupted", file=sys.stderr)
            if backend.last_stats is not None and backend.last_stats.dropped:
                print(f"[{len(backend.last_stats.dropped)} older messages no longer fit the context "
                      "window and were left out]", file=sys.stderr)
            if backend.last_stats is not None and backend.last_stats.stop_reason == "length":
                stats = backend.last_stats   # the reply ends mid-sentence: say why
                print(f"[{length_note(stats.limited_by, stats.length_limit)}"
                      + (" --max-tokens allows more.]" if stats.limited_by == "max_tokens" else "]"),
                      file=sys.stderr)
            if args.stats and backend.last_stats is not None:
                print_stats(backend.last_stats, args.stats)
            if not interactive:
                return 130 if handle.cancelled else 0
    finally:
        if prompt is not None:
            prompt.close()
        backend.unload()            # waits for a snapshot still being written
        if stored is not None:
            stored.close()
