"""Child process that quantizes one GGUF through llama.cpp and reports per tensor.

Run as ``python -m converters.quantize_worker SRC DST FILE_TYPE NTHREAD [BUFFER_BYTES]``. llama.cpp
has no progress callback; it logs ``[  i/  n] name ...`` as it starts each tensor,
so a log callback forwards those lines to stdout as ``PROGRESS i n name``. Running
in a child keeps llama.cpp's global logger and mapped input out of the caller's
process and lets a cancel stop it at once.
"""
from __future__ import annotations

import ctypes
import re
import sys

BUFFER_BYTES = 256 * 1024 * 1024
_LINE = re.compile(r"\[\s*(\d+)\s*/\s*(\d+)\]\s+(\S+)")


def main(argv: list[str]) -> int:
    src, dst, file_type, nthread = argv[0], argv[1], int(argv[2]), int(argv[3])
    buffer_bytes = int(argv[4]) if len(argv) > 4 else BUFFER_BYTES
    import llama_cpp

    pending = []

    def on_log(level, text, user_data):
        pending.append(text.decode("utf-8", "replace") if text else "")
        joined = "".join(pending)
        if "\n" not in joined and not _LINE.search(joined):
            return
        pending.clear()
        m = _LINE.search(joined)
        if m:
            sys.stdout.write(f"PROGRESS {m.group(1)} {m.group(2)} {m.group(3)}\n")
            sys.stdout.flush()
        elif level >= 2 and level != 5 and joined.strip():  # warnings and errors
            sys.stderr.write(joined if joined.endswith("\n") else joined + "\n")
        if "\n" not in joined:
            pending.append(joined[m.end():] if m else joined)

    callback = llama_cpp.llama_log_callback(on_log)  # keep a reference for the C side
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = file_type
    params.nthread = nthread
    if hasattr(params, "max_buf_size"):
        # llama.cpp converts a whole tensor to float32 by default (1 GB for an 8B model's
        # embeddings, 2 GB for 70B); slabs of rows keep the quantizer's memory bounded too.
        params.max_buf_size = buffer_bytes
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    sys.stdout.write(f"DONE {rc}\n")
    sys.stdout.flush()
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
