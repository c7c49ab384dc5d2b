"""Stream a checkpoint into an F32, F16 or BF16 GGUF, one row block at a time.

Header, metadata and tensor infos are written first (the writer needs every
tensor's shape and type up front); then each tensor's data is read from the
memory-mapped safetensors in blocks of at most BLOCK_BYTES, converted, written,
and its source pages released. Peak memory is a few blocks, whatever the model
size. bf16 -> BF16 without permutation is a plain byte copy.
"""
from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import gguf
import numpy as np

from common.task import TaskHandle
from converters.checkpoint import Checkpoint
from converters.gguf_metadata import add_metadata
from converters.safetensors_reader import DTYPES, MappedFile, row_blocks
from converters.tensor_plan import PlannedTensor, permute_qk
from converters.tokenizer_meta import TokenizerMeta

BLOCK_BYTES = 8 * 1024 * 1024
_NP_OUT = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}


_scratch = threading.local()


def _bf16_to_f32(raw: np.ndarray, reuse: bool) -> np.ndarray:
    """bf16 bits -> float32 in one pass; ``reuse`` writes into this thread's scratch buffer."""
    if not reuse:
        return np.left_shift(raw, 16, dtype=np.uint32).view(np.float32)
    buf = getattr(_scratch, "u32", None)
    if buf is None or buf.size < raw.size:
        buf = _scratch.u32 = np.empty(raw.size, np.uint32)
    out = buf[:raw.size].reshape(raw.shape)
    np.left_shift(raw, 16, out=out, dtype=np.uint32)
    return out.view(np.float32)


def _to_f32(raw: np.ndarray, src: str, reuse: bool = False) -> np.ndarray:
    if src == "BF16":
        return _bf16_to_f32(raw, reuse)
    return raw.astype(np.float32, copy=False)


def _f32_to_bf16(a: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((bits + (((bits >> 16) & 1) + np.uint32(0x7FFF))) >> 16).astype(np.uint16)


def convert_block(raw: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Raw source bits (uint16 for BF16) -> the output dtype's representation."""
    if src == dst:
        return raw
    if dst == "BF16":
        return _f32_to_bf16(_to_f32(raw, src))
    if dst == "F32":
        return _to_f32(raw, src)
    # The float32 step is only a temporary here, so it can live in a reused buffer.
    return _to_f32(raw, src, reuse=True).astype(np.float16)


def write_gguf(ckpt: Checkpoint, tok: TokenizerMeta, plan: list[PlannedTensor], out_path: Path,
               out_dtype: str, handle: Optional[TaskHandle] = None, threads: int = 1) -> None:
    """Write the planned tensors to ``out_path`` (a temporary name; the caller renames)."""
    handle = handle or TaskHandle()
    writer = gguf.GGUFWriter(str(out_path), "llama")
    add_metadata(writer, ckpt, tok, out_dtype)
    for t in plan:
        raw_dtype = gguf.GGMLQuantizationType.BF16 if t.out_dtype == "BF16" else None
        writer.add_tensor_info(t.gguf_name, t.shape, _NP_OUT[t.out_dtype], t.nbytes, raw_dtype=raw_dtype)
    files: dict[Path, MappedFile] = {}
    total = sum(t.source.nbytes if t.source else t.nbytes for t in plan)
    done = 0
    pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="gguf-convert")
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        fout = writer.fout[0]
        writer.write_padding(fout, fout.tell())
        for i, t in enumerate(plan):
            handle.check()
            handle.progress(done, total, unit="B", message=t.gguf_name, stage="convert",
                            tensor=i, tensors=len(plan))
            if t.source is None:
                fout.write(np.ascontiguousarray(t.data, dtype=_NP_OUT[t.out_dtype]).tobytes())
                done += t.nbytes
            else:
                mf = files.get(t.source.file)
                if mf is None:
                    mf = files[t.source.file] = MappedFile(t.source.file)
                for nbytes in _write_tensor(fout, mf, t, handle, pool, 2 * max(1, threads)):
                    done += nbytes
                    handle.progress(done, total, unit="B", message=t.gguf_name, stage="convert",
                                    tensor=i, tensors=len(plan))
            writer.write_padding(fout, t.nbytes)
        handle.progress(total, total, unit="B", message="written", stage="convert",
                        tensor=len(plan), tensors=len(plan))
        fout.flush()
        os.fsync(fout.fileno())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        writer.close()
        for mf in files.values():
            mf.close()


def _write_tensor(fout, mf: MappedFile, t: PlannedTensor, handle: TaskHandle, pool: ThreadPoolExecutor,
                  depth: int):
    ref = t.source
    np_src = DTYPES[ref.dtype][0]
    if ref.dtype == t.out_dtype and not t.permute_heads:
        for r0, n in row_blocks(ref, BLOCK_BYTES):
            handle.check()
            off, nbytes = ref.offset + r0 * ref.row_bytes, n * ref.row_bytes
            fout.write(mf.view(off, nbytes))
            mf.release(off, nbytes)
            yield nbytes
        return
    cols = ref.shape[1] if len(ref.shape) == 2 else ref.shape[0] if ref.shape else 1
    head_rows = ref.shape[0] // t.permute_heads if t.permute_heads else 1

    def work(r0: int, n: int):
        off, nbytes = ref.offset + r0 * ref.row_bytes, n * ref.row_bytes
        raw = mf.array(off, nbytes // np_src.itemsize, np_src)
        if len(ref.shape) == 2:
            raw = raw.reshape(n, cols)
        if t.permute_heads:
            raw = permute_qk(raw, n // head_rows)
        return off, nbytes, np.ascontiguousarray(convert_block(raw, ref.dtype, t.out_dtype),
                                                 dtype=_NP_OUT[t.out_dtype])

    # Blocks convert in parallel (numpy releases the GIL) and are written in order; at most
    # two per worker are in flight, so memory stays a few blocks.
    pending: deque = deque()
    blocks = iter(row_blocks(ref, BLOCK_BYTES, head_rows))
    while True:
        for r0, n in blocks:
            handle.check()
            pending.append(pool.submit(work, r0, n))
            if len(pending) >= depth:
                break
        if not pending:
            return
        off, nbytes, out = pending.popleft().result()
        fout.write(out.data)
        del out
        mf.release(off, nbytes)
        yield nbytes
