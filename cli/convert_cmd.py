"""`llamadesk convert SRC_DIR --out OUT.gguf`: HF Llama 3 checkpoint -> verified GGUF."""
from __future__ import annotations

import argparse
import sys
import time

TYPES = ("q4_k_m", "q4_k_s", "q4_0", "q5_k_m", "q6_k", "q8_0", "f16", "bf16", "f32")
STAGES = {"convert": "converting", "quantize": "quantizing", "verify": "verifying", "measure": "measuring"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src_dir", metavar="SRC_DIR", help="Hugging Face model folder (config.json + safetensors)")
    parser.add_argument("--out", required=True, metavar="OUT.gguf",
                        help="GGUF file to write: its name ends in .gguf and its folder exists")
    parser.add_argument("--force", action="store_true",
                        help="replace OUT.gguf if it exists (the old file stays until the new one is verified)")
    parser.add_argument("--type", default="q4_k_m", choices=TYPES, dest="qtype",
                        help="output type (default q4_k_m, recommended)")
    parser.add_argument("--keep-intermediate", action="store_true",
                        help="keep the F16/BF16 file made before quantizing")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="threads for quantization and verification (default: all cores)")
    parser.add_argument("--no-measure", action="store_true",
                        help="skip measuring the quantized file against the F16/BF16 original "
                             "(KL divergence, same top token, perplexity on a calibration text)")


class ProgressBar:
    """One self-rewriting terminal line per stage, redrawn at most 10 times a second."""

    def __init__(self, stream=None, width: int = 28):
        self.stream, self.width = stream or sys.stderr, width
        self._stage = None
        self._last = 0.0
        self._tty = self.stream.isatty()

    def __call__(self, p) -> None:
        from common.task import format_bytes, format_eta

        stage = p.extra.get("stage", "")
        now = time.monotonic()
        new_stage = stage != self._stage
        if not new_stage and now - self._last < 0.1 and (p.fraction or 0) < 1:
            return
        if new_stage and self._stage is not None and self._tty:
            self.stream.write("\n")   # keep the finished stage's line
        self._stage, self._last = stage, now
        frac = p.fraction or 0.0
        bar = "#" * int(frac * self.width) + "-" * (self.width - int(frac * self.width))
        if p.unit == "B":
            amount = f"{format_bytes(p.done)}/{format_bytes(p.total)}"
        else:
            amount = f"{int(p.done)}/{int(p.total or 0)} {p.unit}".strip()
        tensors = ""
        if "tensors" in p.extra and p.unit != "tensors":
            tensors = f" tensor {min(p.extra['tensor'] + 1, p.extra['tensors'])}/{p.extra['tensors']}"
        line = (f"{STAGES.get(stage, stage):<10} [{bar}] {frac * 100:5.1f}% {amount}{tensors} "
                f"ETA {format_eta(p.eta_s)} {p.message[:40]}")
        if self._tty:
            self.stream.write("\r" + line.ljust(110)[:110])
        elif new_stage or frac >= 1:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._stage is not None and self._tty:
            self.stream.write("\n")
            self.stream.flush()


def run(args: argparse.Namespace) -> int:
    from common.task import Cancelled, TaskHandle, format_bytes
    from converters.errors import ConversionError, OutputExists
    from models.convert_chain import convert_and_register

    bar = ProgressBar()
    handle = TaskHandle(on_progress=bar)
    try:
        result = convert_and_register(args.src_dir, args.out, args.qtype, keep_intermediate=args.keep_intermediate,
                                      threads=args.threads, handle=handle, replace=args.force, make_folder=False,
                                      measure=_measurer(args))
    except OutputExists as e:
        bar.close()
        print(f"error: {e.path} already exists; add --force to replace it.", file=sys.stderr)
        return 1
    except ConversionError as e:
        bar.close()
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (Cancelled, KeyboardInterrupt):
        bar.close()
        print("cancelled: no output was written", file=sys.stderr)
        return 130
    bar.close()
    print("verification:")
    print(result.verification.summary())
    print(f"wrote {result.path} ({result.qtype.upper()}, {format_bytes(result.output_bytes)}) in "
          f"{result.total_seconds:.1f} s (convert {result.convert_seconds:.1f} s, quantize "
          f"{result.quantize_seconds:.1f} s, verify {result.verify_seconds:.1f} s)")
    if result.intermediate_path:
        print(f"kept intermediate {result.intermediate_path}")
    if result.quality is not None:
        _report_quality(result)
    elif result.measure_error:
        print(f"quality not measured: {result.measure_error} (the file is verified and kept; "
              f"`quality` can measure it later)")
    return 0 if result.verification.ok else 1


def _measurer(args):
    """The quality measurement for quantized outputs, unless --no-measure."""
    if getattr(args, "no_measure", False):
        return None
    from functools import partial

    from engine.quality import measure_quality

    return partial(measure_quality, threads=args.threads)


def _report_quality(result) -> None:
    from cli.quality_cmd import print_quality

    q = result.quality     # the library has it already (convert_and_register)
    print_quality(q, f"quality against the {q.base_quant or 'original'} original ({result.measure_seconds:.1f} s):")
