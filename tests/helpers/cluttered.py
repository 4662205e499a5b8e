"""The demo's red mug drawn on cluttered backgrounds (wood grain; a wall above a table), with the
mask of where the mug is."""

import numpy as np
import PIL.Image
import PIL.ImageDraw

SIZE = 320
MUG_RED = (200, 25, 30)


def mug_mask() -> PIL.Image.Image:
    """The mug: a body, its rim, and a handle on the right with its opening."""
    mask = PIL.Image.new("L", (SIZE, SIZE), 0)
    draw = PIL.ImageDraw.Draw(mask)
    draw.rounded_rectangle((100, 90, 200, 240), radius=14, fill=255)
    draw.ellipse((180, 120, 250, 200), fill=255)
    draw.ellipse((196, 136, 234, 184), fill=0)
    draw.rectangle((100, 120, 200, 200), fill=255)  # the body covers the handle's inner end
    return mask


def shaded_mug(background: np.ndarray) -> PIL.Image.Image:
    """The red mug, lit from the left, over ``background`` (SIZE x SIZE x 3)."""
    x = np.linspace(1.15, 0.7, SIZE)[None, :, None]
    mug = np.clip(np.array(MUG_RED)[None, None, :] * x, 0, 255) * np.ones((SIZE, SIZE, 3))
    inside = np.asarray(mug_mask())[:, :, None] > 127
    return PIL.Image.fromarray(np.where(inside, mug, background).astype(np.uint8))


def wood_grain(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(float)
    rings = np.sin(
        0.09 * y + 3.0 * np.sin(0.013 * x + 0.004 * y) + rng.normal(0, 0.15, (SIZE, SIZE))
    )
    tone = 0.5 + 0.5 * rings
    dark, light = np.array([105, 62, 30]), np.array([190, 135, 80])
    return dark + tone[:, :, None] * (light - dark)


def wall_and_table(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wall = np.array([225, 222, 210]) + rng.normal(0, 4, (SIZE, SIZE, 3))
    table = wood_grain(seed)[:SIZE, :]
    rows = np.arange(SIZE)[:, None, None]
    return np.where(rows < 200, wall, table)


def no_object_wall(seed: int = 0) -> PIL.Image.Image:
    rng = np.random.default_rng(seed)
    wall = np.array([225, 222, 210]) + rng.normal(0, 3, (SIZE, SIZE, 3))
    return PIL.Image.fromarray(np.clip(wall, 0, 255).astype(np.uint8))
