"""LlamaDesk entry point: no arguments opens the window; subcommands run headless.

Every command runs under one handler: a known error (``common.errors.UserError``, a
full disk, a file that cannot be read or written) prints one sentence and exits 1; an
unexpected one prints a sentence and where its traceback was logged, and exits 70
(``--debug`` or ``LLAMADESK_DEBUG=1`` also prints the traceback); Ctrl+C exits 130.
"""
from __future__ import annotations

import os
import sys

EXIT_ERROR = 1
EXIT_INTERNAL = 70      # EX_SOFTWARE: a bug, reported with a log file
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = _debug_requested(argv)
    try:
        code = _run(argv)
        _flush_stdout()
        return code
    except KeyboardInterrupt:
        _quiet_stdout()
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:          # `llamadesk chats list | head`: the reader left
        _quiet_stdout()
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the one top-level handler
        return _report(exc, debug, argv)


def _run(argv: list[str]) -> int:
    from cli.parser import build_parser, run_command

    parser = build_parser()
    args = parser.parse_args(argv)
    from common.logs import setup_logging

    setup_logging()
    if args.command is None:
        from app.application import run_app

        return run_app()
    return run_command(args)


def _report(exc: BaseException, debug: bool, argv: list[str]) -> int:
    import traceback

    from common.errors import log_traceback, unexpected_message, user_message

    if isinstance(exc, OSError) and exc.filename is None and _is_stdout_error():
        exc.filename = "standard output"   # e.g. the output was redirected to a full disk
        _quiet_stdout()
    message = user_message(exc)
    if message is not None:
        print(f"error: {message}", file=sys.stderr)
        if debug:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        return EXIT_ERROR
    log = log_traceback(exc, context="command: " + " ".join(argv[:1]))
    print(f"error: {unexpected_message(exc, log)}", file=sys.stderr)
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return EXIT_INTERNAL


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("LLAMADESK_DEBUG", "").strip() not in ("", "0")


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except OSError as exc:
        if exc.filename is None:
            exc.filename = "standard output"
        _quiet_stdout()
        raise


def _is_stdout_error() -> bool:
    try:
        sys.stdout.flush()
        return False
    except OSError:
        return True


def _quiet_stdout() -> None:
    """Point standard output at the null device so the exit-time flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
