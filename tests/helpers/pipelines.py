"""The generation library's inputs: a cut-out photo, and a progress callback that cancels."""

import PIL.Image
import PIL.ImageDraw

from generation.pipelines import JobCancelled, cut_out


def cancel_at(step):
    """A progress callback that cancels the job when it reports ``step``."""

    def on_step(done, total):
        if done == step:
            raise JobCancelled()

    return on_step


def disc_cutout():
    """A blue disc on white, cut out as the pipelines cut out a photo."""
    photo = PIL.Image.new("RGB", (96, 96), "white")
    PIL.ImageDraw.Draw(photo).ellipse((20, 20, 76, 76), fill=(40, 90, 200))
    return cut_out(photo)
