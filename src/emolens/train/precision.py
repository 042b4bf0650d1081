"""Numeric precision of training: bfloat16 autocast + channels_last where the CPU runs it natively.

Measured on this project's 2-core AVX512-BF16 CPU (``bench/train_speed.py --precision both``): bf16
autocast with channels_last trains the registry's convnets 2.5-3x faster than fp32 and learns as
well (``tests/train/test_precision.py``). CPUs without native bf16 emulate it slowly, so ``auto``
keeps fp32 there. On CUDA, ``auto`` follows the ``amp`` setting (bf16 autocast).
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16), read from its flags."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        flags = ""
    if any(f in flags.split() for f in _BF16_FLAGS):
        return True
    capability = str(getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")())
    return "AMX" in capability or "BF16" in capability


def resolve_precision(name: str, device: torch.device, amp: bool = True) -> str:
    """``"bf16"`` or ``"fp32"`` for a ``train.precision`` setting on ``device``."""
    if name not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if amp else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """The autocast context for a resolved precision (a disabled one for fp32)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def memory_format(device: torch.device, precision: str) -> torch.memory_format:
    """channels_last where oneDNN's bf16 convolutions want it (CPU bf16), else contiguous."""
    return torch.channels_last if device.type == "cpu" and precision == "bf16" else torch.contiguous_format
