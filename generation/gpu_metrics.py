"""A worker process's model calls and its GPU, as metrics: the seconds of each model call, and,
when NVML is there (``nvidia-ml-py``, in GPU images), its GPU's utilisation and memory and the
share of wall time this process spent inside model calls (``hydrilla_gpu_busy_ratio``).

NVML reads the driver, not CUDA: sampling never initialises CUDA. It runs in the pool child that
makes the model calls, on a thread of its own, every ``GPU_METRICS_SECONDS``.
"""

import contextlib
import logging
import os
import threading
import time

from hydrilla import metrics

logger = logging.getLogger(__name__)


class BusyClock:
    """The time spent inside model calls, read as a share of the wall time since the last read:
    a call still running counts up to now, a call that began before the last read from then."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = clock()
        self._inside_since: float | None = None
        self._busy = 0.0

    def enter(self) -> None:
        with self._lock:
            self._inside_since = self._clock()

    def leave(self) -> None:
        with self._lock:
            self._busy += self._clock() - max(self._inside_since, self._window_start)
            self._inside_since = None

    def share(self) -> float:
        """The busy share (0-1) of the time since the previous call, which starts a new one."""
        with self._lock:
            now = self._clock()
            busy = self._busy
            if self._inside_since is not None:
                busy += now - max(self._inside_since, self._window_start)
            wall = now - self._window_start
            self._window_start, self._busy = now, 0.0
        return min(1.0, busy / wall) if wall > 0 else 0.0


busy = BusyClock()


@contextlib.contextmanager
def model_call(backend: str):
    """Time the model call in the block: its histogram, and this process's busy share."""
    began = time.perf_counter()
    busy.enter()
    try:
        yield
    finally:
        busy.leave()
        metrics.MODEL_CALL_SECONDS.labels(backend=backend).observe(time.perf_counter() - began)


def load_nvml():
    """NVML initialised, or None where it is not installed or finds no driver."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        logger.info("No GPU metrics: NVML found no driver (%s)", exc)
        return None
    return pynvml


def own_gpu(pinned: str | None) -> str:
    """The GPU this process's model calls run on, as NVML names it: the one it was pinned to
    (``GPU_DEVICES``), else CUDA's default device, the first of ``CUDA_VISIBLE_DEVICES``."""
    if pinned is not None:
        return pinned
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return visible.split(",")[0].strip() or "0"


def sample(nvml, gpu: str) -> None:
    """Set the GPU's gauges from NVML and this process's busy share since the last sample."""
    if gpu.isdigit():
        handle = nvml.nvmlDeviceGetHandleByIndex(int(gpu))
    else:
        handle = nvml.nvmlDeviceGetHandleByUUID(gpu)
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    metrics.GPU_UTILIZATION.labels(gpu=gpu).set(
        nvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100
    )
    metrics.GPU_MEMORY_USED.labels(gpu=gpu).set(memory.used)
    metrics.GPU_MEMORY_TOTAL.labels(gpu=gpu).set(memory.total)
    metrics.GPU_BUSY_RATIO.labels(gpu=gpu).set(busy.share())


def start_sampling(pinned: str | None, period_seconds: float) -> threading.Thread | None:
    """Sample this process's GPU every ``period_seconds`` on a daemon thread; None without
    NVML."""
    nvml = load_nvml()
    if nvml is None:
        return None
    gpu = own_gpu(pinned)

    def sample_forever():
        while True:
            try:
                sample(nvml, gpu)
            except nvml.NVMLError as exc:
                logger.warning("Could not sample GPU %s: %s", gpu, exc)
            time.sleep(period_seconds)

    busy.share()  # the first period starts now, not at import
    thread = threading.Thread(target=sample_forever, name="gpu-metrics", daemon=True)
    thread.start()
    return thread
