"""The frozen LlamaDesk's entry point: the window with no arguments, the CLI with a command.

The program also starts its own worker processes the way the source tree does,
``<program> -m converters.quantize_worker ...`` (``sys.executable`` is the frozen program
itself), so ``-m`` followed by one of LlamaDesk's worker modules (``*_worker``) runs that
module, as Python would; nothing else runs that way.
"""
from __future__ import annotations

import os
import runpy
import sys

def _add_library_folder() -> None:
    """Windows: llama.cpp's DLLs (and CUDA's, collected beside them) load from the bundle."""
    if sys.platform == "win32" and hasattr(os, "add_dll_directory"):
        lib = os.path.join(getattr(sys, "_MEIPASS", os.path.dirname(sys.executable)), "llama_cpp", "lib")
        if os.path.isdir(lib):
            os.add_dll_directory(lib)


def _run_worker_module(argv: list[str]) -> int:
    import importlib.util

    module = argv[1] if len(argv) > 1 else ""
    try:
        found = module.endswith("_worker") and importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        print(f"error: there is no worker module {module!r} in this LlamaDesk", file=sys.stderr)
        return 2
    sys.argv = [module, *argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    _add_library_folder()
    if sys.argv[1:2] == ["-m"]:
        sys.exit(_run_worker_module(sys.argv[1:]))
    from main import main

    sys.exit(main())
