"""One call from a Hugging Face Llama 3 folder to a verified GGUF.

convert (stream to F32/F16/BF16) -> quantize through llama.cpp (for 4-8 bit types)
-> verify -> measure (optional: the caller's ``measure`` compares the quantized file with
the F16/BF16 intermediate before that is removed) -> rename into place. Everything is written under temporary names in the
output folder and renamed only once complete and verified; on error or cancel no
output is left behind.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from common.task import Cancelled, TaskHandle
from converters.checkpoint import Checkpoint, open_checkpoint
from converters.errors import ConversionError, OutputExists
from converters.preflight import check_disk_space, check_output_folder
from converters.quant_types import (DEFAULT_QUANT_TYPE, QUANT_TYPES, QUANT_TYPES_INFO, is_quantized,
                                    tensor_bytes, tensor_type)
from converters.quantize import default_threads, quantize_gguf
from converters.tensor_plan import plan_tensors
from converters.tokenizer_meta import TokenizerMeta, read_tokenizer
from converters.verify import VerificationReport, verify_gguf
from converters.write_gguf import write_gguf

__all__ = ["ConversionResult", "QUANT_TYPES", "DEFAULT_QUANT_TYPE", "convert_checkpoint",
           "estimate_output_bytes", "ConversionError"]


@dataclass(frozen=True)
class ConversionResult:
    path: Path
    qtype: str
    verification: VerificationReport
    output_bytes: int
    convert_seconds: float
    quantize_seconds: float
    verify_seconds: float
    total_seconds: float
    intermediate_path: Optional[Path] = None
    quality: Optional[object] = None       # what ``measure`` returned (engine.quality.QualityReport)
    measure_seconds: float = 0.0
    measure_error: str = ""                # why the measurement failed; the verified file is kept


def _check_qtype(qtype: str) -> str:
    key = (qtype or "").lower()
    if key not in QUANT_TYPES_INFO:
        raise ConversionError(f"Unknown output type {qtype!r}; choose one of: {', '.join(QUANT_TYPES)}.")
    return key


def intermediate_dtype(ckpt: Checkpoint) -> str:
    """bf16 sources go through BF16 (a byte copy that keeps bf16's range), others through F16."""
    return "BF16" if ckpt.source_dtype == "BF16" else "F16"


def _metadata_bytes(tok: TokenizerMeta, plan: list) -> int:
    """GGUF header size: strings carry an 8-byte length; each tensor info and data is padded to 32."""
    strings = sum(8 + len(t.encode("utf-8")) for t in tok.tokens) + 4 * len(tok.tokens)
    strings += sum(8 + len(m.encode("utf-8")) for m in tok.merges)
    strings += len((tok.chat_template or "").encode("utf-8"))
    tensor_infos = sum(8 + len(t.gguf_name) + 4 + 8 * len(t.shape) + 4 + 8 + 32 for t in plan)
    return strings + tensor_infos + 4096


def _estimate(ckpt: Checkpoint, tok: TokenizerMeta, qtype: str) -> int:
    c = ckpt.config
    plan = plan_tensors(ckpt, "F16")
    total = sum(tensor_bytes(tensor_type(qtype, t.gguf_name, t.shape, c.n_layers, c.tie_word_embeddings),
                             t.shape) for t in plan)
    return total + _metadata_bytes(tok, plan)


def estimate_output_bytes(src_dir, qtype: str = DEFAULT_QUANT_TYPE) -> int:
    """Size in bytes of the GGUF that ``convert_checkpoint(src_dir, ..., qtype)`` will write."""
    qtype = _check_qtype(qtype)
    ckpt = open_checkpoint(src_dir)
    return _estimate(ckpt, read_tokenizer(ckpt.path, ckpt.config.vocab_size, ckpt.raw_config), qtype)


def _remove(*paths: Optional[Path]) -> None:
    for p in paths:
        if p is not None:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass


def convert_checkpoint(src_dir, out_path, qtype: str = DEFAULT_QUANT_TYPE, *,
                       keep_intermediate: bool = False, threads: Optional[int] = None,
                       handle: Optional[TaskHandle] = None, replace: bool = True,
                       make_folder: bool = True, measure: Optional[Callable] = None) -> ConversionResult:
    """Convert ``src_dir`` to a verified GGUF at ``out_path``; see the package docstring.

    ``out_path`` must end in ``.gguf``. ``replace`` False refuses an existing file
    (``OutputExists``; with True the old file stays until the new one is verified);
    ``make_folder`` False refuses a missing output folder instead of creating it.

    ``measure(base, other, *, base_name, other_name, handle)``, when given and the output is
    quantized, runs after verification on the intermediate and the quantized file (this
    package does not evaluate models itself: ``engine.quality.measure_quality`` fits); its
    result is ``ConversionResult.quality``. A cancel during it cancels the conversion."""
    handle = handle or TaskHandle()
    qtype = _check_qtype(qtype)
    out = Path(out_path).expanduser().absolute()
    threads = threads or default_threads()
    t0 = time.perf_counter()

    ckpt = open_checkpoint(src_dir)
    tok = read_tokenizer(ckpt.path, ckpt.config.vocab_size, ckpt.raw_config)
    quantized = is_quantized(qtype)
    first_dtype = intermediate_dtype(ckpt) if quantized else QUANT_TYPES_INFO[qtype].label
    plan = plan_tensors(ckpt, first_dtype)

    check_output_folder(out, replace=replace, make_folder=make_folder)
    first_bytes = sum(t.nbytes for t in plan) + _metadata_bytes(tok, plan)
    out_bytes = _estimate(ckpt, tok, qtype) if quantized else first_bytes
    check_disk_space(out.parent, out_bytes, first_bytes if quantized else 0)

    tmp_out = out.with_name(f".{out.name}.partial")
    tmp_mid = out.with_name(f".{out.stem}.{first_dtype.lower()}.gguf.partial") if quantized else None
    kept_mid = out.with_name(f"{out.stem}.{first_dtype.lower()}.gguf") if quantized and keep_intermediate else None
    if kept_mid is not None and kept_mid.exists() and not replace:
        raise OutputExists(kept_mid)
    convert_s = quantize_s = measure_s = 0.0
    quality = None
    measure_error = ""
    try:
        handle.restart_clock()
        write_gguf(ckpt, tok, plan, tmp_mid or tmp_out, first_dtype, handle, threads=threads)
        convert_s = time.perf_counter() - t0
        if quantized:
            handle.restart_clock()
            t1 = time.perf_counter()
            quantize_gguf(tmp_mid, tmp_out, qtype, threads=threads, handle=handle)
            quantize_s = time.perf_counter() - t1
        handle.check()
        handle.progress(0, 1, message="verifying", stage="verify")
        t2 = time.perf_counter()
        report = verify_gguf(tmp_out, ckpt.path / "tokenizer.json", threads=threads)
        verify_s = time.perf_counter() - t2
        if not report.ok:
            bad = report.failed()[0]
            raise ConversionError(f"The converted file failed verification ({bad.name}: {bad.detail}), "
                                  f"so it was not kept.")
        handle.check()
        if quantized and measure is not None:
            t3 = time.perf_counter()
            handle.restart_clock()
            try:
                quality = measure(tmp_mid, tmp_out, base_name=f"{out.stem} ({first_dtype} intermediate)",
                                  other_name=out.name, handle=handle)
            except (Cancelled, KeyboardInterrupt, MemoryError):
                raise
            except Exception as exc:  # noqa: BLE001 - a verified file outlives a failed measurement
                measure_error = str(exc) or type(exc).__name__
            measure_s = time.perf_counter() - t3
        if quantized and not keep_intermediate:
            _remove(tmp_mid)
        handle.check()
        os.replace(tmp_out, out)
        if kept_mid is not None:
            os.replace(tmp_mid, kept_mid)
        handle.progress(1, 1, message="done", stage="verify")
    except BaseException:
        _remove(tmp_out, tmp_mid)
        raise
    report.path = out
    return ConversionResult(out, qtype, report, out.stat().st_size, convert_s, quantize_s, verify_s,
                            time.perf_counter() - t0, kept_mid, quality, measure_s, measure_error)
