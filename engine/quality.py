"""How closely one GGUF follows another on a text: llama.cpp's quantization-quality figures.

``measure_quality(base, other)`` evaluates both files on a calibration text and
computes what ``llama-perplexity --kl-divergence-base`` / ``--kl-divergence`` report,
with the same definitions (llama.cpp's tools/perplexity):

- the text is tokenized once (BOS added as the vocabulary asks) and cut into chunks of
  ``n_ctx`` tokens; each chunk is evaluated on its own with its first token replaced by
  BOS, and only the second half is scored (positions n_ctx/2 .. n_ctx-2 predicting the
  next token), so every scored token has at least n_ctx/2 tokens of context;
- per scored token: the base model's log-softmax is stored as llama.cpp stores it
  (uint16 steps between max-16 and max, plus a scale and an offset), and against the
  other model's log-softmax come the KL divergence sum_i p_base (log p_base - log q),
  whether both put the same token on top, the negative log-likelihood of the true next
  token under each (perplexities and their ratio) and the change Δp in that token's
  probability (its RMS). As in llama.cpp, the base's side comes from the stored form,
  which keeps log-probabilities down to 16 nats below the top: a true token less
  likely than that counts as 16 nats there (PPL(base) reads slightly low for it);
- means come with llama.cpp's standard errors; ``*_ci95`` are 1.96 times those.

Memory stays bounded whatever the model size: one model is loaded at a time (first
the base over every chunk, then the other), and between the two passes the base
model's log-probabilities go to a scratch file next to the other file (2 bytes per
vocabulary entry per scored token: about 0.5 GB for Llama 3 and the shipped text),
read back one chunk at a time. At any moment the process holds one model, one chunk
of logits and blocks of a few rows of arithmetic, never both models' logits for the
whole text. The scratch file is removed on success, failure and cancel.

Layers go to the GPU as the engine's planner fits them (``n_gpu_layers="auto"``), on the
CPU otherwise; a load that runs out of GPU memory is retried on the CPU.

Progress is reported in chunks (``extra["stage"] == "measure"``), a cancel stops
within one chunk (inside llama.cpp's evaluation too), and nothing outside the scratch
file is written: recording the result is the caller's business
(``models.library.record_quality``).
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Optional, Union

import numpy as np

from common.errors import UserError
from common.task import TaskHandle

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION_TEXT = ROOT / "assets" / "calibration.txt"
DEFAULT_N_CTX = 512          # llama-perplexity's default context for perplexity and KLD
# The shipped text makes about 4,700 Llama 3 tokens (9 chunks of 512); a smaller vocabulary
# splits it into more, and no more than this many chunks are evaluated by default.
DEFAULT_MAX_CHUNKS = 10
Z95 = 1.959964
_ROWS = 16                   # rows of logits per block of arithmetic (16 x 128256 floats = 8 MB)


class QualityError(UserError):
    """The two files cannot be compared (or the text is unusable); the message says why."""


@dataclass
class QualityReport:
    """llama.cpp's KL-divergence statistics for ``other`` measured against ``base``."""

    base_name: str
    other_name: str
    base_quant: Optional[str]
    other_quant: Optional[str]
    text_name: str
    n_ctx: int
    chunks: int
    tokens: int                  # scored tokens
    kld: float                   # mean KL divergence (nats)
    kld_ci95: float
    same_top: float              # fraction of tokens where both models' most likely token agrees
    same_top_ci95: float
    ppl_base: float
    ppl_other: float
    ppl_ratio: float
    ppl_ratio_ci95: float
    rms_dp: float                # RMS change in the true next token's probability (0..1)
    rms_dp_ci95: float
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "QualityReport":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def lines(self) -> list[str]:
        """The figures as llama-perplexity prints them, one per line."""
        return [
            f"Mean KLD      : {self.kld:.6f} ± {self.kld_ci95:.6f} (95%)",
            f"Same top token: {100 * self.same_top:.2f}% ± {100 * self.same_top_ci95:.2f}% (95%)",
            f"PPL base      : {self.ppl_base:.4f}",
            f"PPL other     : {self.ppl_other:.4f}",
            f"PPL ratio     : {self.ppl_ratio:.5f} ± {self.ppl_ratio_ci95:.5f} (95%)",
            f"RMS Δp        : {100 * self.rms_dp:.3f}% ± {100 * self.rms_dp_ci95:.3f}% (95%)",
            f"Scored tokens : {self.tokens} ({self.chunks} chunks of {self.n_ctx}, text {self.text_name})",
        ]


def read_calibration_text(path: Optional[Path] = None) -> str:
    path = Path(path) if path else CALIBRATION_TEXT
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise QualityError(f"{path.name} is not UTF-8 text.") from None


def estimate_seconds(parameters: int, text_chars: Optional[int] = None, threads: Optional[int] = None,
                     n_ctx: int = DEFAULT_N_CTX) -> float:
    """A rough time for ``measure_quality`` on the CPU: two passes over the text.

    Prompt evaluation costs about 2 x parameters floating-point operations per token;
    llama.cpp does about 25 GFLOP/s per core on it (measured by bench/quality.py: a
    1.24B F16 and its Q4_K_M, 4,096 tokens in 177 s on 2 busy cores), plus about a
    second per chunk for loading and the statistics.
    """
    if text_chars is None:
        text_chars = len(read_calibration_text())
    chunks = min(DEFAULT_MAX_CHUNKS, max(2, text_chars // 4 // n_ctx))   # ~4 characters per Llama 3 token
    tokens = chunks * n_ctx
    threads = threads or _default_threads()
    per_pass = tokens * 2.0 * max(parameters, 1) / (threads * 25e9)
    return 2 * per_pass + tokens / n_ctx * 1.0 + 2.0


def _default_threads() -> int:
    from common.inference_options import default_threads

    return default_threads()


# --- vocabularies ----------------------------------------------------------------

def _read_vocab(path: Path, text: str) -> tuple[int, list[int], int]:
    """(n_vocab, tokens of ``text`` as llama-perplexity makes them, BOS id or -1), weights not loaded."""
    import llama_cpp

    from engine.llama_runtime import _init_backend, tokenize_with

    _init_backend()
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        raise QualityError(f"llama.cpp could not read {path.name}.")
    try:
        vocab = llama_cpp.llama_model_get_vocab(model)
        add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
        # common_tokenize(ctx, text, add_special=true): special-token text is left as text
        tokens = tokenize_with(vocab, text, add_special=True, parse_special=False)
        return llama_cpp.llama_vocab_n_tokens(vocab), tokens, llama_cpp.llama_vocab_bos(vocab) if add_bos else -1
    finally:
        llama_cpp.llama_model_free(model)


def _validate(path: Path) -> None:
    from models.gguf_validate import validate_gguf_set

    if not path.is_file():
        raise QualityError(f"{path} does not exist.")
    try:
        validate_gguf_set(path)
    except UserError as exc:
        raise QualityError(f"{path.name} was refused: {exc}") from exc


def _gpu_layers(path: Path, n_ctx: int, requested: Union[int, str]) -> int:
    """Layers to offload: as asked, or for "auto" what the engine's planner fits in GPU memory."""
    if requested != "auto":
        return int(requested)
    try:
        from engine.gpu import detect_device
        from engine.gpu_plan import model_sizes_from_gguf, plan_offload

        return plan_offload(model_sizes_from_gguf(path), detect_device(), n_ctx).gpu_layers
    except Exception:  # noqa: BLE001 - no usable GPU information: the CPU does it
        return 0


def _quant(rt) -> Optional[str]:
    from models.gguf_info import quant_name

    return quant_name(rt.meta("general.file_type"))


# --- statistics (llama.cpp's kl_divergence_result) ----------------------------------------

class _Sums:
    def __init__(self):
        self.nll = self.nll2 = self.nll_base = self.nll_base2 = self.nll_nll_base = 0.0
        self.kld = self.kld2 = self.p_diff2 = self.p_diff4 = 0.0
        self.same_top = 0
        self.count = 0

    def add(self, nll, nll_base, kld, p_diff, same) -> None:
        nll, nll_base, kld, p_diff = (np.asarray(a, dtype=np.float64) for a in (nll, nll_base, kld, p_diff))
        self.nll += nll.sum()
        self.nll2 += (nll * nll).sum()
        self.nll_base += nll_base.sum()
        self.nll_base2 += (nll_base * nll_base).sum()
        self.nll_nll_base += (nll * nll_base).sum()
        self.kld += kld.sum()
        self.kld2 += (kld * kld).sum()
        d2 = p_diff * p_diff
        self.p_diff2 += d2.sum()
        self.p_diff4 += (d2 * d2).sum()
        self.same_top += int(np.count_nonzero(same))
        self.count += len(kld)

    def _mean_se(self, s: float, s2: float) -> tuple[float, float]:
        n = self.count
        if n < 1:
            return 0.0, 0.0
        f = s / n
        var = s2 / n - f * f
        return f, math.sqrt(var / (n - 1)) if var > 0 and n > 10 else 0.0

    def report(self, **names) -> QualityReport:
        n = self.count
        log_ppl, log_ppl_se = self._mean_se(self.nll, self.nll2)
        log_base, log_base_se = self._mean_se(self.nll_base, self.nll_base2)
        cov = (self.nll_nll_base / n - (self.nll / n) * (self.nll_base / n)) / (n - 1) if n >= 10 else 0.0
        ratio_se = math.sqrt(max(0.0, log_ppl_se ** 2 + log_base_se ** 2 - 2 * cov))
        ratio = math.exp(log_ppl - log_base)
        kld, kld_se = self._mean_se(self.kld, self.kld2)
        mse, mse_se = self._mean_se(self.p_diff2, self.p_diff4)
        rms = math.sqrt(max(mse, 0.0))
        same = self.same_top / n if n else 0.0
        same_se = math.sqrt(same * (1 - same) / (n - 1)) if n > 1 else 0.0
        return QualityReport(
            **names, tokens=n, kld=kld, kld_ci95=Z95 * kld_se, same_top=same, same_top_ci95=Z95 * same_se,
            ppl_base=math.exp(log_base), ppl_other=math.exp(log_ppl), ppl_ratio=ratio,
            ppl_ratio_ci95=Z95 * ratio * ratio_se, rms_dp=rms,
            rms_dp_ci95=Z95 * (0.5 / rms * mse_se if rms > 0 else 0.0))


def _base_log_probs(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """llama.cpp's stored form of log-softmax rows: (uint16 steps, scale, min_log_prob)."""
    maxl = logits.max(axis=1)
    minl = np.maximum(logits.min(axis=1), maxl - np.float32(16))
    sum_exp = np.exp(logits - maxl[:, None]).sum(axis=1, dtype=np.float64)
    lse = np.log(sum_exp).astype(np.float32)
    min_log_prob = (minl - maxl - lse).astype(np.float32)
    scale = ((maxl - minl) / np.float32(65535)).astype(np.float32)
    inv = np.divide(np.float32(1), scale, out=np.zeros_like(scale), where=scale != 0)
    steps = np.rint((logits - minl[:, None]) * inv[:, None])
    steps = np.where(logits > minl[:, None], np.clip(steps, 0, 65535), 0).astype(np.uint16)
    return steps, scale, min_log_prob


def _compare(logits: np.ndarray, steps: np.ndarray, scale: np.ndarray, min_log_prob: np.ndarray,
             targets: np.ndarray, sums: _Sums) -> None:
    """Accumulate llama.cpp's per-token statistics of ``logits`` against stored base rows."""
    rows = np.arange(len(logits))
    imax = logits.argmax(axis=1)
    maxl = logits[rows, imax]
    sum_exp = np.exp(logits - maxl[:, None]).sum(axis=1, dtype=np.float64)
    lse = np.log(sum_exp).astype(np.float32)
    nll = maxl + lse - logits[rows, targets]
    nll_base = -(scale * steps[rows, targets].astype(np.float32) + min_log_prob)
    log_base = steps.astype(np.float32) * scale[:, None] + min_log_prob[:, None]
    top = maxl + lse
    terms = np.where(log_base > -16, np.exp(log_base) * (log_base - logits + top[:, None]), 0)
    kld = terms.sum(axis=1, dtype=np.float64)
    same = steps.argmax(axis=1) == imax
    p_diff = np.exp(-nll) - np.exp(-nll_base)
    sums.add(nll, nll_base, kld, p_diff, same)


# --- the measurement ---------------------------------------------------------------

def _scratch_file(near: Path, scratch_dir: Optional[Path]):
    for folder in ([Path(scratch_dir)] if scratch_dir else []) + [near.parent, Path(tempfile.gettempdir())]:
        try:
            fd, name = tempfile.mkstemp(prefix=".llamadesk-logprobs-", suffix=".bin", dir=folder)
            return os.fdopen(fd, "w+b"), Path(name)
        except OSError:
            continue
    raise QualityError("No folder could take the measurement's scratch file.")


def measure_quality(base, other, *, text: Optional[str] = None, text_name: Optional[str] = None,
                    n_ctx: int = DEFAULT_N_CTX, max_chunks: Optional[int] = DEFAULT_MAX_CHUNKS,
                    threads: Optional[int] = None, n_gpu_layers: Union[int, str] = "auto",
                    handle: Optional[TaskHandle] = None, scratch_dir: Optional[Path] = None,
                    validate: bool = True, base_name: Optional[str] = None,
                    other_name: Optional[str] = None) -> QualityReport:
    """Measure ``other`` against ``base`` (both GGUF paths) on ``text`` (default: the shipped
    calibration text); see the module docstring. ``base_name``/``other_name`` name the files
    in the report (default: their file names)."""
    from engine.llama_runtime import LlamaRuntime, LoadFailed

    handle = handle or TaskHandle()
    base, other = Path(base), Path(other)
    t0 = time.perf_counter()
    if text is None:
        text, text_name = read_calibration_text(), text_name or CALIBRATION_TEXT.name
    text_name = text_name or "text"
    if validate:
        _validate(base)
        _validate(other)
    handle.check()
    n_vocab, tokens, bos = _read_vocab(base, text)
    other_vocab, other_tokens, other_bos = _read_vocab(other, text)
    if other_vocab != n_vocab or other_tokens != tokens or other_bos != bos:
        what = (f"{n_vocab:,} and {other_vocab:,} tokens" if other_vocab != n_vocab
                else "they split the same text into different tokens")
        raise QualityError(f"{base.name} and {other.name} have different vocabularies ({what}), so they are "
                           f"not versions of the same model and cannot be compared.")
    n_chunks = len(tokens) // n_ctx
    if max_chunks is not None:
        n_chunks = min(n_chunks, max_chunks)
    if len(tokens) < 2 * n_ctx or n_chunks < 1:
        raise QualityError(f"The text is too short: it makes {len(tokens)} tokens and the measurement needs "
                           f"at least {2 * n_ctx} (two chunks of {n_ctx}).")
    first = n_ctx // 2
    scored = n_ctx - 1 - first
    threads = threads or _default_threads()
    total = 2 * n_chunks
    names = {}

    def chunk_tokens(i: int) -> list[int]:
        chunk = tokens[i * n_ctx:(i + 1) * n_ctx]
        if bos >= 0:
            chunk = [bos] + chunk[1:]
        return chunk

    def load(path: Path):
        layers = _gpu_layers(path, n_ctx, n_gpu_layers)
        while True:
            try:
                # flash attention on the CPU too: llama.cpp's "auto" picks it, and it is faster
                # for whole-chunk batches like these
                return LlamaRuntime(path, n_ctx=n_ctx, n_gpu_layers=layers, n_threads=threads, n_batch=n_ctx,
                                    flash_attn=True if layers == 0 else None, handle=handle.linked())   # the load's progress is not the measurement's
            except LoadFailed as exc:
                handle.check()
                if layers > 0:      # out of GPU memory, most likely: the CPU can still do it
                    layers = 0
                    continue
                raise QualityError(f"{exc}; the measurement needs to load it.") from exc

    scratch, scratch_path = _scratch_file(other, scratch_dir)
    scales = np.empty((n_chunks, scored), dtype=np.float32)
    offsets = np.empty((n_chunks, scored), dtype=np.float32)
    try:
        handle.restart_clock()
        handle.progress(0, total, unit="chunks", message="Measuring quality: loading the original",
                        stage="measure")
        rt = load(base)
        try:
            names["base_quant"] = _quant(rt)
            for i in range(n_chunks):
                logits = rt.decode_outputs(chunk_tokens(i), first, handle)[:scored]
                for r in range(0, scored, _ROWS):
                    steps, scales[i, r:r + _ROWS], offsets[i, r:r + _ROWS] = _base_log_probs(logits[r:r + _ROWS])
                    scratch.write(steps.tobytes())
                del logits
                handle.progress(i + 1, total, unit="chunks", stage="measure",
                                message=f"Measuring quality: original, chunk {i + 1} of {n_chunks}")
        finally:
            rt.close()
        scratch.flush()
        scratch.seek(0)
        sums = _Sums()
        rt = load(other)
        try:
            names["other_quant"] = _quant(rt)
            for i in range(n_chunks):
                logits = rt.decode_outputs(chunk_tokens(i), first, handle)[:scored]
                targets = np.asarray(tokens[i * n_ctx + first + 1:(i + 1) * n_ctx], dtype=np.int64)
                for r in range(0, scored, _ROWS):
                    block = logits[r:r + _ROWS]
                    steps = np.fromfile(scratch, dtype=np.uint16, count=len(block) * n_vocab)
                    _compare(block, steps.reshape(len(block), n_vocab), scales[i, r:r + _ROWS],
                             offsets[i, r:r + _ROWS], targets[r:r + _ROWS], sums)
                del logits
                handle.progress(n_chunks + i + 1, total, unit="chunks", stage="measure",
                                message=f"Measuring quality: {other_name or other.name}, "
                                        f"chunk {i + 1} of {n_chunks}")
        finally:
            rt.close()
    finally:
        scratch.close()
        scratch_path.unlink(missing_ok=True)
    return sums.report(base_name=base_name or base.name, other_name=other_name or other.name,
                       text_name=text_name, n_ctx=n_ctx,
                       chunks=n_chunks, seconds=time.perf_counter() - t0, **names)


def measure_and_record(base, other, **kwargs) -> QualityReport:
    """``measure_quality`` then store the result with ``other`` in the library's metadata.

    Nothing is recorded unless the measurement finished: a cancel or an error leaves the
    library as it was."""
    from models.library import record_quality

    report = measure_quality(base, other, **kwargs)
    record_quality(other, report.to_dict())
    return report
