"""Builds llama.cpp's own llama-bench (and llama-server, llama-perplexity) from the source vendored in the
llama-cpp-python sdist.

The binary is cached under bench/.cache (git-ignored). Same llama.cpp version as the
bindings, same CMake flags as the project's build (scripts/llama_cmake_args.sh).

    python bench/llama_tools.py        # prints the path of llama-bench, building it once
"""
from __future__ import annotations

import glob
import os
import shlex
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"


def _cmake_args(kind: str) -> list[str]:
    out = subprocess.run(["sh", str(ROOT / "scripts" / "llama_cmake_args.sh"), kind],
                         capture_output=True, text=True, check=True).stdout
    return shlex.split(out)


def llama_bench_path(kind: str = "cpu") -> Path:
    return _llama_tool("llama-bench", kind)


def llama_server_path(kind: str = "cpu") -> Path:
    """llama.cpp's own HTTP server, for bench/server.py (same build folder as llama-bench)."""
    return _llama_tool("llama-server", kind)


def llama_perplexity_path(kind: str = "cpu") -> Path:
    """llama.cpp's perplexity / KL-divergence tool, for bench/quality.py (only that target is built)."""
    return _llama_tool("llama-perplexity", kind)


def _llama_tool(target: str, kind: str) -> Path:
    version = metadata.version("llama-cpp-python")
    build = CACHE / f"llama-cpp-{version}-{kind}"
    exe = build / "bin" / target
    if exe.exists():
        return exe
    CACHE.mkdir(parents=True, exist_ok=True)
    sdists = glob.glob(str(CACHE / f"llama_cpp_python-{version}.tar.gz"))
    if not sdists:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
                        f"llama-cpp-python=={version}", "-d", str(CACHE)], check=True)
        sdists = glob.glob(str(CACHE / f"llama_cpp_python-{version}.tar.gz"))
    src = CACHE / f"llama_cpp_python-{version}"
    if not src.exists():
        with tarfile.open(sdists[0]) as tar:
            tar.extractall(CACHE, filter="data")
    llama_src = src / "vendor" / "llama.cpp"
    args = ["-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
            "-DLLAMA_BUILD_EXAMPLES=OFF", f"-DLLAMA_BUILD_SERVER={'ON' if target == 'llama-server' else 'OFF'}",
            "-DBUILD_SHARED_LIBS=OFF",
            *_cmake_args(kind)]
    subprocess.run(["cmake", "-S", str(llama_src), "-B", str(build), *args], check=True)
    subprocess.run(["cmake", "--build", str(build), "--target", target, "-j",
                    str(os.cpu_count() or 2)], check=True)
    return exe


if __name__ == "__main__":
    print(llama_bench_path(sys.argv[1] if len(sys.argv) > 1 else "cpu"))
