"""`llamadesk download REPO [--include PATTERN ...] [--revision REV] [--convert [TYPE]]`.

Each file streams with a progress bar; Ctrl-C keeps the partial file and running
the same command again resumes it. Original (safetensors) repos can be converted
straight after downloading with ``--convert``.
"""
from __future__ import annotations

import argparse
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", metavar="REPO", help="Hub repo id, e.g. bartowski/Llama-3.2-1B-Instruct-GGUF")
    parser.add_argument("--include", action="append", metavar="PATTERN",
                        help="only files matching this pattern, e.g. '*Q4_K_M*.gguf' (repeatable)")
    parser.add_argument("--revision", metavar="REV", help="branch, tag or commit (default main)")
    parser.add_argument("--convert", nargs="?", const="q4_k_m", metavar="TYPE",
                        help="after downloading an original repo, convert it to a GGUF (default q4_k_m)")
    parser.add_argument("--force", action="store_true",
                        help="with --convert: replace an earlier conversion of this repo to that type")


class FileBar:
    """One self-rewriting line per file, at most 10 redraws a second."""

    def __init__(self, label: str, index: int, count: int, stream=None):
        self.label, self.index, self.count = label, index, count
        self.stream = stream or sys.stderr
        self._last = 0.0
        self._tty = self.stream.isatty()

    def __call__(self, p) -> None:
        from common.task import format_bytes, format_eta

        now = time.monotonic()
        frac = p.fraction or 0.0
        if now - self._last < 0.1 and frac < 1:
            return
        self._last = now
        bar = "#" * int(frac * 24) + "-" * (24 - int(frac * 24))
        speed = f"{format_bytes(p.rate)}/s" if p.rate else "--"
        doing = "checking" if p.message.startswith("checking") else f"[{self.index}/{self.count}]"
        line = (f"{doing} [{bar}] {frac * 100:5.1f}% {format_bytes(p.done)}/{format_bytes(p.total)} "
                f"{speed} ETA {format_eta(p.eta_s)} {self.label[-40:]}")
        if self._tty:
            self.stream.write("\r" + line.ljust(120)[:120])
        elif frac >= 1:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()


def run(args: argparse.Namespace) -> int:
    from common.task import Cancelled, TaskHandle
    from models.file_download import DownloadError
    from models.hub_env import OfflineError
    from models.hub_errors import HubAccessError
    from models.repo_download import download_repo, plan_download

    bars: list[FileBar] = []
    plan_count = {"n": 0}

    def handle_for(remote):
        bar = FileBar(remote.filename, len(bars) + 1, plan_count["n"] or 1)
        if bars:
            bars[-1].close()
        bars.append(bar)
        return TaskHandle(on_progress=bar)

    try:
        if args.convert:
            from models.convert_chain import CHECKPOINT_FILES, converted_path, download_and_convert

            target = converted_path(args.repo, args.convert)
            if target.exists() and not args.force:
                print(f"error: {target} already exists; add --force to convert again and replace it.",
                      file=sys.stderr)
                return 1
            plan_count["n"] = len(plan_download(args.repo, CHECKPOINT_FILES, args.revision))
            result = download_and_convert(args.repo, args.convert, args.revision, handle_for=handle_for,
                                          replace=args.force)
            for b in bars[-1:]:
                b.close()
            print(f"converted to {result.path}")
            return 0
        plan = plan_download(args.repo, args.include, args.revision)
        plan_count["n"] = len(plan)
        paths = download_repo(args.repo, args.include, args.revision, handle_for=handle_for)
    except KeyboardInterrupt:
        for b in bars[-1:]:
            b.close()
        print("interrupted: the partial download is kept; run the same command again to resume",
              file=sys.stderr)
        return 130
    except Cancelled:
        return 130
    except (HubAccessError, DownloadError, OfflineError, ValueError) as exc:
        for b in bars[-1:]:
            b.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - e.g. the converter's own errors
        for b in bars[-1:]:
            b.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for b in bars[-1:]:
        b.close()
    for name, path in paths.items():
        print(f"{name} -> {path}")
    if not any(n.endswith(".gguf") for n in paths) and "config.json" in paths:
        print(f"this is an original checkpoint: convert it with `llamadesk download {args.repo} --convert q4_k_m`")
    return 0
