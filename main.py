"""LlamaDesk entry point: no arguments opens the window; subcommands run headless."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from cli.registry import build_parser, run_command

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from app.application import run_app

        return run_app()
    try:
        return run_command(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
