"""`llamadesk models`: the local library as a table."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--add-folder", metavar="DIR", help="also look for models in DIR from now on")
    parser.add_argument("--import", dest="import_path", metavar="FILE.gguf",
                        help="validate a GGUF and copy it into the models folder")
    parser.add_argument("--paths", action="store_true",
                        help="also show each model's full path, on its own line below the model")


def run(args: argparse.Namespace) -> int:
    import sys

    from common.settings import load_settings
    from models import library
    from models.choices import models_folder
    from models.gguf_validate import UnsafeGGUFError

    folder = models_folder(load_settings())     # the folder chosen in the window's Settings

    if args.add_folder:
        library.add_folder(args.add_folder)
    if args.import_path:
        try:
            entry = library.import_gguf(args.import_path, models_dir=folder)
        except (UnsafeGGUFError, FileExistsError, OSError) as exc:
            print(f"error: refused {args.import_path}: {exc}", file=sys.stderr)
            return 1
        print(f"imported {entry.path}")
    problems: list[str] = []
    entries = library.scan(problems, include_demo=True, models_dir=folder)
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    if not entries:
        print("no models yet: try `llamadesk search llama --gguf` and `llamadesk download REPO`")
        return 0
    print(f"{'name':<44} {'kind':<10} {'arch':<7} {'params':>7} {'quant':<7} {'size':>9} {'ctx':>7}  source")
    for e in entries:
        print(_row(e))
        if args.paths:
            print(f"    {e.path}")
        for w in e.warnings:
            print(f"  warning: {w}")
    return 0


def _row(e) -> str:
    """One table line: name, kind, arch, params, quant, size, context, source."""
    from common.task import format_bytes, format_parameters
    from models.bundled import DEMO_ALIASES

    i, name, size = e.info, e.name, format_bytes(e.size)
    if e.problem or (e.kind == "gguf" and i is None):
        return (f"{name:<44} {'refused':<10} {'':<7} {'':>7} {'':<7} {size:>9} {'':>7}  "
                f"{e.source}: {e.problem}")
    if e.kind == "checkpoint":
        return (f"{name:<44} {'checkpoint':<10} {'llama':<7} {'':>7} {'bf16':<7} {size:>9} "
                f"{'':>7}  {e.source} (convert it: llamadesk convert {e.path} --out ...)")
    if e.source == "demo":
        source = f"demo (chat --model {DEMO_ALIASES[0]})"
    else:
        origin = e.provenance.get("origin", "")
        repo = e.provenance.get("repo") or e.repo_id or ""
        source = f"{e.source}{' ' + origin if origin else ''}{' ' + repo if repo else ''}"
    return (f"{name:<44} {'gguf':<10} {i.architecture or '?':<7} {format_parameters(i.parameters):>7} "
            f"{i.quant or '?':<7} {size:>9} {i.context_length or '':>7}  {source}")
