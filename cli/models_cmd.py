"""`llamadesk models`: the local library as a table."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--add-folder", metavar="DIR", help="also look for models in DIR from now on")
    parser.add_argument("--import", dest="import_path", metavar="FILE.gguf",
                        help="validate a GGUF and copy it into the models folder")
    parser.add_argument("--paths", action="store_true", help="show full paths")


def run(args: argparse.Namespace) -> int:
    import sys

    from common.task import format_bytes, format_parameters
    from models import library
    from models.gguf_validate import UnsafeGGUFError

    if args.add_folder:
        library.add_folder(args.add_folder)
    if args.import_path:
        try:
            entry = library.import_gguf(args.import_path)
        except (UnsafeGGUFError, FileExistsError, OSError) as exc:
            print(f"error: refused {args.import_path}: {exc}", file=sys.stderr)
            return 1
        print(f"imported {entry.path}")
    problems: list[str] = []
    entries = library.scan(problems)
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    if not entries:
        print("no models yet: try `llamadesk search llama --gguf` and `llamadesk download REPO`")
        return 0
    print(f"{'name':<44} {'kind':<10} {'arch':<7} {'params':>7} {'quant':<7} {'size':>9} {'ctx':>7}  source")
    for e in entries:
        i = e.info
        name = str(e.path) if args.paths else e.name
        if e.kind == "checkpoint" and e.problem:
            print(f"{name:<44} {'refused':<10} {'':<7} {'':>7} {'':<7} {format_bytes(e.size):>9} {'':>7}  "
                  f"{e.source}: {e.problem}")
            continue
        if e.kind == "checkpoint":
            print(f"{name:<44} {'checkpoint':<10} {'llama':<7} {'':>7} {'bf16':<7} {format_bytes(e.size):>9} "
                  f"{'':>7}  {e.source} (convert it: llamadesk convert {e.path} --out ...)")
            continue
        if i is None:
            print(f"{name:<44} {'refused':<10} {'':<7} {'':>7} {'':<7} {format_bytes(e.size):>9} {'':>7}  "
                  f"{e.source}: {e.problem}")
            continue
        origin = e.provenance.get("origin", "")
        repo = e.provenance.get("repo") or e.repo_id or ""
        print(f"{name:<44} {'gguf':<10} {i.architecture or '?':<7} {format_parameters(i.parameters):>7} "
              f"{i.quant or '?':<7} {format_bytes(e.size):>9} {i.context_length or '':>7}  "
              f"{e.source}{' ' + origin if origin else ''}{' ' + repo if repo else ''}")
        for w in e.warnings:
            print(f"  warning: {w}")
    return 0
