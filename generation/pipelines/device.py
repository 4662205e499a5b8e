"""The one place that decides which device and dtype the models run on."""

import gc
import os

import torch

_DTYPES = {
    "fp16": torch.float16,
    "float16": torch.float16,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp32": torch.float32,
    "float32": torch.float32,
}


def select_device(preferred: str | None = None) -> torch.device:
    """``preferred`` (e.g. "cpu", "cuda:1") if given, else CUDA when available, else the CPU."""
    if preferred:
        return torch.device(preferred)
    # Ask NVML rather than the CUDA runtime, so that checking from the Celery parent
    # does not initialise CUDA and poison the workers it forks later.
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def select_dtype(device: torch.device, preferred: str | None = None) -> torch.dtype:
    """Half precision on CUDA (fp16 unless ``preferred`` says otherwise); always fp32 elsewhere,
    because CPU kernels for half precision are missing or slow."""
    if device.type != "cuda":
        return torch.float32
    if preferred is None:
        return torch.float16
    try:
        return _DTYPES[preferred.lower()]
    except KeyError:
        raise ValueError(f"Unknown dtype {preferred!r}; use one of {sorted(_DTYPES)}") from None


def release_cached_memory(device: torch.device) -> None:
    """Hand the allocator's cached blocks back to the GPU so the next job starts clean."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
