"""Is there a CUDA driver and a GPU? Asked through ``libcuda`` with ctypes, importing nothing.

Backend selection must know whether a GPU is present without importing torch, TensorRT or
pycuda (each takes seconds and gigabytes, and an edge install may lack them). The CUDA driver
API answers that in microseconds: ``cuInit(0)``, ``cuDeviceGetCount``.
"""

from __future__ import annotations

import ctypes
import functools
import sys

_LIBRARIES = {
    "linux": ("libcuda.so.1", "libcuda.so"),
    "win32": ("nvcuda.dll",),
}


@functools.lru_cache(maxsize=1)
def cuda_device_count() -> tuple[int, str]:
    """(number of CUDA devices, why there are none); cached for the process."""
    names = _LIBRARIES.get(sys.platform)
    if names is None:
        return 0, f"no CUDA driver on {sys.platform}"
    library = None
    for name in names:
        try:
            library = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if library is None:
        return 0, "no CUDA driver (libcuda not found: no NVIDIA GPU or driver on this machine)"
    result = library.cuInit(0)
    if result != 0:
        return 0, f"CUDA driver present but cuInit failed (CUresult {result}: no usable GPU)"
    count = ctypes.c_int(0)
    result = library.cuDeviceGetCount(ctypes.byref(count))
    if result != 0:
        return 0, f"cuDeviceGetCount failed (CUresult {result})"
    if count.value == 0:
        return 0, "CUDA driver present but no CUDA device"
    return count.value, f"{count.value} CUDA device(s)"


@functools.lru_cache(maxsize=1)
def cuda_driver_version() -> str | None:
    """The CUDA version the driver supports, ``"12.4"``; ``None`` without a driver."""
    names = _LIBRARIES.get(sys.platform, ())
    for name in names:
        try:
            library = ctypes.CDLL(name)
        except OSError:
            continue
        version = ctypes.c_int(0)
        if library.cuDriverGetVersion(ctypes.byref(version)) == 0:
            return f"{version.value // 1000}.{(version.value % 1000) // 10}"
    return None
