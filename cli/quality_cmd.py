"""`llamadesk quality BASE.gguf OTHER.gguf`: how closely OTHER follows BASE (llama.cpp's KLD figures)."""
from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", metavar="BASE.gguf", help="the reference file (F16, BF16 or Q8_0 of the model)")
    parser.add_argument("other", metavar="OTHER.gguf", help="the file to measure (e.g. a Q4_K_M of the same model)")
    parser.add_argument("--text", metavar="FILE", help="UTF-8 text to evaluate on (default: LlamaDesk's "
                                                       "calibration text, prose, dialogue, code, several languages)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--ctx", type=int, default=512, metavar="N",
                        help="tokens per chunk; the second half of each is scored (default 512, as llama-perplexity)")
    parser.add_argument("--chunks", type=int, default=10, metavar="N", help="evaluate at most N chunks (default 10)")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="threads (default: physical cores)")
    parser.add_argument("--no-record", action="store_true",
                        help="do not store the result with OTHER in the library's metadata")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cli.convert_cmd import ProgressBar
    from common.task import Cancelled, TaskHandle
    from engine.quality import QualityError, measure_quality, read_calibration_text
    from models.quant_quality import REFERENCE_QUANTS, UNQUANTIZED

    if args.ctx < 8 or args.chunks is not None and args.chunks < 1:
        print("error: --ctx must be at least 8 and --chunks at least 1.", file=sys.stderr)
        return 1
    text = text_name = None
    if args.text:
        path = Path(args.text)
        try:
            text, text_name = read_calibration_text(path), path.name
        except OSError as exc:
            print(f"error: cannot read {path}: {exc.strerror or exc}.", file=sys.stderr)
            return 1
    bar = ProgressBar()
    try:
        report = measure_quality(args.base, args.other, text=text, text_name=text_name, n_ctx=args.ctx,
                                 max_chunks=args.chunks, threads=args.threads, handle=TaskHandle(on_progress=bar))
    except QualityError as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (Cancelled, KeyboardInterrupt):
        bar.close()
        print("cancelled: nothing was measured", file=sys.stderr)
        return 130
    bar.close()
    base_q, other_q = (report.base_quant or "").upper(), (report.other_quant or "").upper()
    if not args.no_record and base_q in REFERENCE_QUANTS and other_q not in UNQUANTIZED:
        from models.library import record_quality

        record_quality(args.other, report.to_dict())
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
        return 0
    print_quality(report, f"{report.other_name} ({report.other_quant or '?'}) against {report.base_name} "
                          f"({report.base_quant or '?'}), {report.seconds:.1f} s")
    return 0


def print_quality(report, heading: str) -> None:
    """The heading, the figures one per line, and what they mean for a reader."""
    from models.quant_quality import describe

    print(heading)
    for line in report.lines():
        print(f"  {line}")
    print(describe(report.to_dict(), report.other_quant))
