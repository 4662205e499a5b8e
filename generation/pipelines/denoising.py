"""Progress reporting and cancellation for the denoising loops."""

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from .device import release_cached_memory
from .errors import JobCancelled

OnDenoisingStep = Callable[[int, int], None]
"""Called as ``on_denoising_step(steps_done, total_steps)`` after each denoising step; may raise
JobCancelled."""


def diffusers_step_callback(on_denoising_step: OnDenoisingStep):
    """Adapt ``on_denoising_step`` to diffusers' ``callback_on_step_end``."""

    def callback(pipe, step_index, timestep, callback_kwargs):
        on_denoising_step(step_index + 1, pipe.num_timesteps)
        return callback_kwargs

    return callback


@contextmanager
def report_forward_passes(
    model: torch.nn.Module,
    total_steps: Callable[[], int],
    on_denoising_step: OnDenoisingStep | None,
) -> Iterator[None]:
    """Report each forward pass of ``model`` as a step, for pipelines without
    ``callback_on_step_end``.

    ``total_steps`` is asked on every pass because pipelines only know it once the loop has started.
    """
    if on_denoising_step is None:
        yield
        return
    steps_done = 0

    def after_forward(module, args, output):
        nonlocal steps_done
        steps_done += 1
        on_denoising_step(steps_done, total_steps())

    handle = model.register_forward_hook(after_forward)
    try:
        yield
    finally:
        handle.remove()


def releases_device_memory(method):
    """Free GPU memory when a run on ``self.device`` fails or is cancelled.

    Only then: a run that returns leaves nothing behind but the allocator's cache, which the next
    job reuses, while a collection after every run costs a third of a second (measured with
    benchmarks/gpu_pipeline.py on the tiny models), more than a whole sd-turbo preview on a GPU.
    """

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except JobCancelled as cancelled:
            # A deliberate stop needs no traceback, and its frames would keep the run's
            # tensors alive past the release below.
            cancelled = cancelled.with_traceback(None)
            release_cached_memory(self.device)
            raise cancelled from None
        except BaseException:
            release_cached_memory(self.device)
            raise

    return run
