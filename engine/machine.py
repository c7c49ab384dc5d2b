"""The one probe of this machine: RAM, and the GPU the llama.cpp build can offload to.

``detect_device()`` asks ggml itself (its backend registry knows the CUDA, Metal or
Vulkan device, its description and free memory); falls back to ``nvidia-smi`` for a
CUDA build whose registry cannot be read. CPU-only builds report kind "cpu".
``probe_machine()`` adds the RAM: the GPU planner (``engine.gpu_plan``) plans with the
device, the catalog's "fits" hint (``models.hardware.fit``) compares with
``Machine.memory()``, where VRAM counts only when the build can offload to it.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from common.task import format_bytes
from models.hardware import MachineMemory

_DEV_TYPE_CPU = 0


@dataclass(frozen=True)
class DeviceInfo:
    kind: str            # "cuda" | "metal" | "vulkan" | ... | "cpu"
    name: str
    total_bytes: int = 0
    free_bytes: int = 0


def _ggml_library():
    import llama_cpp

    libdir = Path(llama_cpp.__file__).parent / "lib"
    names = {"darwin": ["libggml.dylib"], "win32": ["ggml.dll"]}.get(sys.platform, ["libggml.so"])
    for name in names:
        if (libdir / name).exists():
            lib = ctypes.CDLL(str(libdir / name))
            vp = ctypes.c_void_p
            lib.ggml_backend_dev_count.restype = ctypes.c_size_t
            lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
            lib.ggml_backend_dev_get.restype = vp
            for fn in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
                getattr(lib, fn).argtypes = [vp]
                getattr(lib, fn).restype = ctypes.c_char_p
            lib.ggml_backend_dev_type.argtypes = [vp]
            lib.ggml_backend_dev_type.restype = ctypes.c_int
            lib.ggml_backend_dev_memory.argtypes = [vp, ctypes.POINTER(ctypes.c_size_t),
                                                   ctypes.POINTER(ctypes.c_size_t)]
            lib.ggml_backend_dev_memory.restype = None
            lib.ggml_backend_dev_backend_reg.argtypes = [vp]
            lib.ggml_backend_dev_backend_reg.restype = vp
            lib.ggml_backend_reg_name.argtypes = [vp]
            lib.ggml_backend_reg_name.restype = ctypes.c_char_p
            return lib
    return None


def ggml_devices() -> list[DeviceInfo]:
    """Every non-CPU device ggml's registry lists, with its memory."""
    import llama_cpp

    llama_cpp.llama_backend_init()  # loads the backends into the registry
    lib = _ggml_library()
    if lib is None:
        return []
    found = []
    for i in range(lib.ggml_backend_dev_count()):
        dev = lib.ggml_backend_dev_get(i)
        if lib.ggml_backend_dev_type(dev) == _DEV_TYPE_CPU:
            continue
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        reg = lib.ggml_backend_dev_backend_reg(dev)
        kind = (lib.ggml_backend_reg_name(reg) or b"gpu").decode().lower()
        desc = (lib.ggml_backend_dev_description(dev) or lib.ggml_backend_dev_name(dev) or b"GPU").decode()
        found.append(DeviceInfo(kind, desc, int(total.value), int(free.value)))
    return found


def nvidia_smi_devices() -> list[DeviceInfo]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total,memory.free",
                              "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    devices = []
    for line in out.strip().splitlines():
        name, total, free = (p.strip() for p in line.rsplit(",", 2))
        devices.append(DeviceInfo("cuda", name, int(float(total)) * 1024 ** 2, int(float(free)) * 1024 ** 2))
    return devices


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "CPU"


def detect_device() -> Optional[DeviceInfo]:
    """The device the model will be offloaded to; kind "cpu" when the build has none."""
    import llama_cpp

    if llama_cpp.llama_supports_gpu_offload():
        try:
            devices = ggml_devices()
        except (OSError, AttributeError):
            devices = []
        if not devices:
            devices = nvidia_smi_devices()
        if devices:
            return max(devices, key=lambda d: d.free_bytes)
    return DeviceInfo("cpu", cpu_name())


@dataclass(frozen=True)
class Machine:
    ram_total: int
    ram_available: Optional[int]
    device: Optional[DeviceInfo]   # None when the GPU information could not be read

    @property
    def gpu(self) -> Optional[DeviceInfo]:
        """The device llama.cpp can offload to, with its memory; None for the CPU only."""
        d = self.device
        return d if d is not None and d.kind != "cpu" and d.total_bytes else None

    def memory(self) -> MachineMemory:
        return MachineMemory(self.ram_total, self.ram_available,
                             self.gpu.total_bytes if self.gpu else None)

    @property
    def description(self) -> str:
        ram = f"{format_bytes(self.ram_total)} RAM"
        gpu = self.gpu
        return f"{ram}, {gpu.name} ({format_bytes(gpu.total_bytes)})" if gpu else f"{ram}, no GPU offload"


def ram() -> tuple[int, Optional[int]]:
    """(total, available) bytes of RAM; available is None where the OS does not say."""
    try:
        fields = {}
        with open("/proc/meminfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                fields[k] = int(v.split()[0]) * 1024
        if fields.get("MemTotal"):
            return fields["MemTotal"], fields.get("MemAvailable")
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), None
    except (ValueError, OSError, AttributeError):
        return 0, None


def probe_machine() -> Machine:
    """RAM and the offload device. May start nvidia-smi and initialise llama.cpp's
    backends: run it off the GUI thread."""
    total, available = ram()
    try:
        device = detect_device()
    except Exception:  # noqa: BLE001 - no usable GPU information: the CPU only
        device = None
    return Machine(total, available, device)
