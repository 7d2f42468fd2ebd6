"""What the benchmark runs on (CPU, memory, versions) and how busy the machine was meanwhile."""

from __future__ import annotations

import os
import platform
import sys
import time
from importlib import metadata


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def mem_total_gib() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2 ** 20
    except OSError:
        pass
    return float("nan")


def cache_sizes() -> str:
    out = []
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for idx in sorted(os.listdir(base)):
            if not idx.startswith("index"):
                continue
            d = os.path.join(base, idx)
            level = open(os.path.join(d, "level")).read().strip()
            kind = open(os.path.join(d, "type")).read().strip()
            size = open(os.path.join(d, "size")).read().strip()
            if kind != "Instruction":
                out.append(f"L{level}{'d' if kind == 'Data' else ''} {size}")
    except OSError:
        return "unknown"
    return ", ".join(out)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict:
    v = {"Python": platform.python_version()}
    for dist in ("numpy", "numba", "llvmlite", "rawpy", "opencv-python-headless", "colour-demosaicing",
                 "kornia", "torch", "scikit-image"):
        v[dist] = _version(dist)
    try:
        import rawpy

        v["LibRaw"] = ".".join(map(str, rawpy.libraw_version)) + (" (OpenMP)" if rawpy.flags.get("OPENMP") else "")
    except Exception:
        v["LibRaw"] = "unknown"
    try:
        import cv2

        v["OpenCV (cv2.__version__)"] = cv2.__version__
        v["OpenCV threads"] = str(cv2.getNumThreads())
    except Exception:
        pass
    try:
        import torch

        v["torch threads"] = str(torch.get_num_threads())
    except Exception:
        pass
    try:
        import numba

        v["Numba threads"] = str(numba.config.NUMBA_NUM_THREADS)
        v["Numba threading layer"] = numba.threading_layer()
    except Exception:
        pass
    return v


def machine() -> dict:
    import llvmlite.binding as llvm

    try:
        target = llvm.get_host_cpu_name()
    except Exception:
        target = "unknown"
    simd = [f for f in ("avx512f", "avx2", "fma", "neon", "asimd") if f in cpu_flags()]
    return {
        "CPU": cpu_model(),
        "LLVM target CPU": target,
        "SIMD": ", ".join(simd) or "unknown",
        "cores (os.cpu_count)": os.cpu_count(),
        "caches": cache_sizes(),
        "RAM": f"{mem_total_gib():.1f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "transparent huge pages": _read("/sys/kernel/mm/transparent_hugepage/enabled"),
    }


def _read(path) -> str:
    try:
        return open(path).read().strip()
    except OSError:
        return "unknown"


def vm_status(field: str) -> int:
    """A /proc/self/status field in bytes (VmRSS, VmHWM ...)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class BusyMonitor:
    """CPU time used by *other* processes while a stretch of the benchmark runs, in cores.

    From /proc/stat (all CPUs' busy time) minus this process's own CPU time (its threads and
    waited-for children). Another process using 1.0 of a 2-core machine halves what a parallel
    kernel can get, so the report states it next to the numbers.
    """

    def __init__(self):
        self.start = self._sample()

    @staticmethod
    def _busy_seconds():
        try:
            with open("/proc/stat") as f:
                fields = f.readline().split()[1:]
        except OSError:
            return None
        ticks = [int(x) for x in fields]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
        busy = sum(ticks[:8]) - idle      # user nice system idle iowait irq softirq steal
        return busy / os.sysconf("SC_CLK_TCK")

    def _sample(self):
        t = os.times()
        return time.perf_counter(), self._busy_seconds(), t.user + t.system + t.children_user + t.children_system

    def other_cores(self) -> float:
        wall0, busy0, own0 = self.start
        wall1, busy1, own1 = self._sample()
        if busy0 is None or wall1 <= wall0:
            return float("nan")
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))


def loadavg() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "unknown"


def python_executable() -> str:
    return sys.executable
