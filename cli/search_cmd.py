"""`llamadesk search QUERY`: find models on the Hugging Face Hub."""
from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="?", default="", metavar="QUERY", help="text to search for")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--gguf", dest="kind", action="store_const", const="gguf",
                      help="only GGUF repos (ready to chat)")
    kind.add_argument("--llama", dest="kind", action="store_const", const="llama",
                      help="only Llama-architecture safetensors repos (convertible)")
    parser.add_argument("--sort", choices=("downloads", "likes", "recent"), default="downloads")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--files", metavar="REPO", help="list one repo's files instead, grouped by quant")


def run(args: argparse.Namespace) -> int:
    from common.safe_paths import UnsafePathError
    from common.task import format_bytes
    from models import hub
    from models.hub_env import OfflineError
    from models.hub_errors import HubAccessError

    try:
        if args.files:
            listing = hub.list_repo(args.files)
            print(f"{listing.repo_id} @ {listing.revision[:12]}{'  (gated)' if listing.gated else ''}")
            for s in listing.gguf_sets:
                parts = f" ({len(s.files)}/{s.parts_expected} parts)" if s.parts_expected > 1 else ""
                print(f"  {s.quant or '?':<8} {format_bytes(s.size):>9}  {s.name}{parts}")
            for f in listing.files:
                if not f.is_gguf:
                    print(f"  {'':<8} {format_bytes(f.size):>9}  {f.path}")
            return 0
        rows = hub.search(args.query, kind=args.kind, sort=args.sort, limit=args.limit)
    except (OfflineError, HubAccessError, UnsafePathError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not rows:
        print("no models found")
        return 0
    width = max(len(r.repo_id) for r in rows)
    print(f"{'repo':<{width}}  {'kind':<10} {'downloads':>10} {'likes':>6}  gated")
    for r in rows:
        print(f"{r.repo_id:<{width}}  {r.kind:<10} {r.downloads:>10} {r.likes:>6}  {'yes' if r.gated else ''}")
    return 0
