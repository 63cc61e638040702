"""The one device and training precision of a run, seeds, and the optimiser and batching every training loop shares."""

from __future__ import annotations

import numpy as np
import os
import torch
import warnings
import sys
from pathlib import Path

from tqdm.auto import tqdm as _auto_tqdm
from tqdm.std import tqdm as _text_tqdm


def pick_device() -> torch.device:
    """The one device of the report: cuda, then mps, then cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


PRECISIONS = ("float32", "bfloat16")


def fast_bfloat16(device: torch.device) -> bool:
    """Whether the device runs bfloat16 matrix work natively: CUDA with bf16, or a CPU with AMX or AVX512-BF16."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
        return "amx_bf16" in flags or "avx512_bf16" in flags
    return False


def pick_precision(device: torch.device) -> str:
    """The precision of training: float32, the stored studies' (every CPU computes it alike, and the report loads
    the models the studies trained only where its precision is theirs).

    EX3_PRECISION=bfloat16 asks for bfloat16 autocast instead (a different model under another checkpoint name),
    and falls back to float32, with a warning, where the device lacks fast bfloat16.
    """
    wanted = os.environ.get("EX3_PRECISION", "")
    if wanted and wanted not in PRECISIONS:
        raise ValueError(f"EX3_PRECISION must be one of {PRECISIONS} or unset, got {wanted!r}")
    if wanted != "bfloat16":
        return "float32"
    if not fast_bfloat16(device):
        warnings.warn(f"EX3_PRECISION=bfloat16, but {device} has no fast bfloat16; training in float32")
        return "float32"
    return "bfloat16"


DEVICE = pick_device()
PRECISION = pick_precision(DEVICE)


def cores() -> int:
    """The CPU threads this run may use: OMP_NUM_THREADS where it is set (the tests' workers set 1), else every core."""
    threads = os.environ.get("OMP_NUM_THREADS", "")
    return int(threads) if threads.isdigit() and int(threads) > 0 else (os.cpu_count() or 1)


def autocast(precision: str | None = None):
    """A training precision (the report's, PRECISION, by default) as a context: bfloat16 autocast or
    nothing. Losses and metrics stay float32."""
    return torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=(precision or PRECISION) == "bfloat16")


def set_seed(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch generator seeded the same way."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def batches(n: int, batch_size: int, generator: torch.Generator, drop_last: bool = True):
    """Index tensors of one shuffled epoch."""
    perm = torch.randperm(n, generator=generator)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for i in range(0, stop, batch_size):
        yield perm[i:i + batch_size]


def adam(params, lr: float, **kwargs) -> torch.optim.Adam:
    """Adam, with the fused kernel where the device has one (same update, fewer passes over memory)."""
    return torch.optim.Adam(params, lr=lr, fused=DEVICE.type in ("cpu", "cuda"), **kwargs)


def _progress_bar(*args, **kwargs):
    """tqdm.auto's progress bar; with EX3_PROGRESS=terminal (tools/run_report.py sets it for the notebook's kernel)
    a plain-text bar on the process's own stderr, which reaches the terminal of the run and not the notebook."""
    if os.environ.get("EX3_PROGRESS") == "terminal":
        return _text_tqdm(*args, file=sys.__stderr__, mininterval=10, ascii=True, **kwargs)
    return _auto_tqdm(*args, **kwargs)


# Bound by assignment, so that a progress bar is no part of a checkpoint's name (cache.training_code reads
# functions and classes defined with def and class): it changes no trained weight.
tqdm = _progress_bar
