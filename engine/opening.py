"""Opening a model: the one place a front end gets a loaded ``Backend`` from.

The window's engine worker, ``llamadesk chat`` and ``llamadesk serve`` all call
``open_backend``; what the model is loaded with comes from the user's settings
(``common.inference_options.LoadOptions``), with a front end's flags laid over them.
"""
from __future__ import annotations

import os
from typing import Optional, Union

from common.inference_options import LoadOptions
from common.task import TaskHandle
from engine.backend import Backend


def is_server_url(model: Union[str, os.PathLike]) -> bool:
    """Whether ``model`` names an OpenAI-compatible server rather than a GGUF file."""
    return str(model).startswith(("http://", "https://"))


def open_backend(model: Union[str, os.PathLike], options: Optional[LoadOptions] = None, *,
                 api_key: Optional[str] = None, remote_model: Optional[str] = None,
                 n_seq_max: Optional[int] = None, handle: Optional[TaskHandle] = None) -> Backend:
    """Open and load ``model``: a GGUF path (llama.cpp, in this process) or a server's base URL.

    A GGUF is validated before llama.cpp reads a byte of it, and its GPU offload is
    planned from ``options.gpu_layers``; a server is asked for its models (``remote_model``:
    which one; its first when None) with ``api_key``. ``n_seq_max``: sequences the local
    context holds at once (the server's parallel requests). ``handle`` reports load
    progress and cancels it. Raises ``engine.backend.EngineError`` with a sentence for the user.
    """
    options = options or LoadOptions()
    if is_server_url(model):
        from engine.remote_backend import RemoteBackend

        backend = RemoteBackend(str(model), api_key=api_key or None, model=remote_model or None,
                                n_ctx=options.n_ctx)
    else:
        from engine.llama_backend import LlamaCppBackend

        extra = {} if n_seq_max is None else {"n_seq_max": n_seq_max}
        backend = LlamaCppBackend(model, n_ctx=options.n_ctx or None, n_gpu_layers=options.gpu_layers,
                                  n_threads=options.engine_threads(), **extra)
    backend.load(handle or TaskHandle())
    return backend


__all__ = ["open_backend", "is_server_url"]
