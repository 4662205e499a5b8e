"""One pool child per GPU of GPU_DEVICES, each pinned to its own through CUDA_VISIBLE_DEVICES in the
child, before anything there can initialise CUDA; a replacement child gets its predecessor's GPU.
On this CPU-only machine the device list is faked: the pinning is what the children report."""

import os
import re
import signal
import time

import pytest

from tests.helpers.processes import WorkerProcess

# On the GPU image's packages: CUDA's torch is the one whose initialisation the pinning must
# precede.
pytestmark = [pytest.mark.worker, pytest.mark.gpu_image]

PINNED = re.compile(r"Pool process (\d+) \(pid (\d+)\) uses GPU (\S+)")


def pins(worker: WorkerProcess) -> list[tuple[int, int, str]]:
    """(pool index, pid, GPU) for every child the worker started, in order."""
    return [(int(index), int(pid), gpu) for index, pid, gpu in PINNED.findall(worker.output())]


def wait_for_pins(
    worker: WorkerProcess, count: int, timeout: float = 60
) -> list[tuple[int, int, str]]:
    deadline = time.monotonic() + timeout
    while len(pins(worker)) < count:
        assert time.monotonic() < deadline, worker.output()[-4000:]
        time.sleep(0.2)
    return pins(worker)


@pytest.fixture
def worker(django_db_setup):
    process = WorkerProcess(
        queues="test-pinning", env={"GPU_DEVICES": "3,7", "TORCH_DEVICE": "cpu"}, concurrency=None
    )
    yield process.start()
    process.stop()


def test_each_child_is_pinned_to_its_own_gpu_and_a_replacement_to_the_same(worker):
    first, second = wait_for_pins(worker, 2)

    assert {(first[0], first[2]), (second[0], second[2])} == {(0, "3"), (1, "7")}
    assert first[1] != second[1]

    on_gpu_3 = first if first[2] == "3" else second
    os.kill(on_gpu_3[1], signal.SIGKILL)
    replacement = wait_for_pins(worker, 3)[2]

    assert (replacement[0], replacement[2]) == (on_gpu_3[0], "3")
    assert replacement[1] != on_gpu_3[1]
