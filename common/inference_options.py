"""What a model is loaded with and what a reply is sampled with: one definition for all.

``GenerationParams`` (sampling) and ``LoadOptions`` (context size, GPU layers, threads)
are plain values that the settings file stores (``common.settings``), the engine
consumes (``engine.types`` re-exports ``GenerationParams``), and every front end
(window, CLI, local server) builds from the same settings, overriding a field for
one run where it has a flag for it. They live in ``common`` so that both the settings
and the engine can import them without an arrow pointing up.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Optional, Union

DEFAULT_N_CTX = 8192        # the context window when nothing else is asked for
DEFAULT_MAX_TOKENS = 1024   # the longest reply, in tokens, when nothing else is asked for

GpuLayers = Union[int, str]  # a whole number of layers, or "auto"


@dataclass
class GenerationParams:
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    frequency_penalty: float = 0.0   # OpenAI's: minus this per earlier occurrence (last repeat_last_n)
    presence_penalty: float = 0.0    # OpenAI's: minus this once a token occurred
    seed: Optional[int] = None       # None: a new seed for every reply
    stop: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


@dataclass
class LoadOptions:
    n_ctx: int = DEFAULT_N_CTX
    gpu_layers: GpuLayers = "auto"   # "auto" (the planner decides) or a whole number (0: CPU only)
    threads: int = 0                 # 0: automatic, ``default_threads()``

    def engine_threads(self) -> int:
        """The threads llama.cpp gets: the chosen number, or the automatic policy."""
        return self.threads or default_threads()

    def to_dict(self) -> dict:
        return asdict(self)


def default_n_ctx(n_ctx_train: Optional[int]) -> int:
    """The context window when none is asked for: the trained length, at most DEFAULT_N_CTX."""
    return min(DEFAULT_N_CTX, n_ctx_train or DEFAULT_N_CTX)


def default_threads() -> int:
    """Automatic thread count: the physical cores, leaving at least one logical CPU free.

    Physical cores are llama.cpp's own choice: a second hyperthread on a core adds no
    arithmetic units, only contention, so more threads than cores is slower. Leaving
    one logical CPU free keeps whatever waits on the model (the window's event loop,
    the terminal's Ctrl+C, the server's HTTP thread) responsive; on a machine with
    hyperthreads the physical count already leaves that room, without them it means
    every core but one.
    """
    logical = os.cpu_count() or 1
    return max(1, min(_physical_cores() or logical, logical - 1))


def _physical_cores() -> int:
    try:
        cores = set()
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            phys = None
            for line in f:
                if line.startswith("physical id"):
                    phys = line.split(":")[1].strip()
                elif line.startswith("core id"):
                    cores.add((phys, line.split(":")[1].strip()))
        return len(cores)
    except OSError:
        return 0
