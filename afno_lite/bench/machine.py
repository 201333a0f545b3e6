"""The machine a benchmark ran on, as its result file records it.

Explained in chapter "Complexity and scaling" (``07_complexity_and_scaling``).
"""
from __future__ import annotations

import os
import platform

import torch

from .series import physicsnemo_layer_cls

__all__ = ["machine_info", "cpu_name"]


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def machine_info(device) -> dict:
    """What a result file records about the machine: platform, CPU, threads, load average, the
    C library and the environment variables that change its allocator, and on CUDA the device
    name, memory, capability, cuDNN and whether flash attention is on."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu": cpu_name(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "device": str(device)}
    try:
        info["load_average_start"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    # the memory allocator decides how often large tensors fault in fresh pages (see minor_faults)
    info["allocator_env"] = {k: v for k, v in os.environ.items()
                             if k.startswith("MALLOC_") or k in ("LD_PRELOAD", "GLIBC_TUNABLES")}
    info["libc"] = "-".join(platform.libc_ver()) or None
    info["cuda"] = torch.version.cuda
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_memory_gb"] = round(props.total_memory / 1e9, 1)
        info["gpu_capability"] = f"{props.major}.{props.minor}"
        info["cudnn"] = torch.backends.cudnn.version()
        info["flash_sdp_enabled"] = torch.backends.cuda.flash_sdp_enabled()
    info["physicsnemo"] = physicsnemo_layer_cls() is not None
    return info
