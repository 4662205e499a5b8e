"""Separate the object from its background: by the border's colour (no weights) on a plain
background, by a segmentation model (``segmentation.SegmentationModel``) on any other when one
is configured."""

from collections.abc import Callable

import numpy as np
import PIL.Image
import PIL.ImageOps
from scipy import ndimage

from .errors import BadInputImage

OBJECT_FILL = 0.85  # share of the output square the object's longer side spans
MIN_IMAGE_SIDE = 16
MIN_OBJECT_SHARE = 0.002  # smaller foregrounds are specks of noise, not an object
# Colour distance (0-255 RGB) from the background above which a pixel is foreground, at least...
MIN_COLOUR_DISTANCE = 30.0
# ...or this many times the spread of the border itself, so noisy or shaded backgrounds stay out.
BORDER_SPREAD_FACTOR = 2.5
# Holes in the object larger than this share of it are openings, not specks to fill.
MIN_OPENING_SHARE = 0.01


def cut_out(
    image: PIL.Image.Image,
    size: int = 256,
    segmentation: Callable[[PIL.Image.Image], np.ndarray] | None = None,
) -> PIL.Image.Image:
    """The object on a transparent ``size`` x ``size`` square, centred, its longer side spanning
    85%.

    Uses the image's own alpha channel when it has a meaningful one; otherwise takes the colour of
    the image border as the background when it is plain, or asks ``segmentation`` (image to soft
    alpha) when it is not and one is given. Raises BadInputImage when no object stands out.
    """
    image = PIL.ImageOps.exif_transpose(image)  # a copy, turned as phone photos say in their EXIF
    # Deciding the mask needs no more detail than the output has, and big photos make it slow.
    image.thumbnail((2 * size, 2 * size), PIL.Image.Resampling.LANCZOS)
    if min(image.size) < MIN_IMAGE_SIDE:
        raise BadInputImage(
            "The image is too small or too narrow. "
            f"Use a roughly square photo, at least {MIN_IMAGE_SIDE} pixels a side."
        )
    rgba = image.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
    if not _has_meaningful_alpha(alpha):
        rgb = np.asarray(rgba.convert("RGB"), dtype=np.float32)
        background, spread = _border_colour(rgb)
        if segmentation is None or spread <= MIN_COLOUR_DISTANCE / BORDER_SPREAD_FACTOR:
            alpha = _alpha_from_background(rgb, background, spread)
        else:
            alpha = _largest_object(segmentation(rgba) > 0.5)
    if (alpha > 0.5).mean() < MIN_OBJECT_SHARE:
        advice = "on a plain background" if segmentation is None else "that stands out"
        raise BadInputImage(
            f"No object could be found in the image. Use a photo of a single object {advice}."
        )
    rgba.putalpha(PIL.Image.fromarray(np.round(alpha * 255).astype(np.uint8)))
    return _centre(rgba, size)


def composite_on_background(
    rgba: PIL.Image.Image, color: tuple[int, int, int] = (255, 255, 255)
) -> PIL.Image.Image:
    """Flatten a cut-out onto a solid colour, for models that take RGB input."""
    background = PIL.Image.new("RGBA", rgba.size, (*color, 255))
    return PIL.Image.alpha_composite(background, rgba.convert("RGBA")).convert("RGB")


def _has_meaningful_alpha(alpha: np.ndarray) -> bool:
    """Whether some of the image is transparent (an opaque channel says nothing about the
    object)."""
    return (alpha < 0.5).mean() > 0.01


def _border_colour(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The border's median colour, and how far (90th percentile) its pixels stray from it."""
    border_width = max(1, min(rgb.shape[:2]) // 50)
    border = np.concatenate(
        [
            rgb[:border_width].reshape(-1, 3),
            rgb[-border_width:].reshape(-1, 3),
            rgb[:, :border_width].reshape(-1, 3),
            rgb[:, -border_width:].reshape(-1, 3),
        ]
    )
    background = np.median(border, axis=0)
    return background, float(np.percentile(np.linalg.norm(border - background, axis=1), 90))


def _alpha_from_background(rgb: np.ndarray, background: np.ndarray, spread: float) -> np.ndarray:
    """Soft alpha of the largest region whose colour differs from the border's."""
    threshold = max(MIN_COLOUR_DISTANCE, BORDER_SPREAD_FACTOR * spread)
    return _largest_object(np.linalg.norm(rgb - background, axis=2) > threshold)


def _largest_object(foreground: np.ndarray) -> np.ndarray:
    """Soft alpha of the largest connected region of ``foreground``, its specks filled."""
    labels, count = ndimage.label(foreground)
    if count == 0:
        return np.zeros(foreground.shape, dtype=np.float32)
    sizes = ndimage.sum_labels(foreground, labels, index=np.arange(1, count + 1))
    mask = _fill_small_holes(labels == 1 + np.argmax(sizes))
    # Half a pixel of blur hides the stair-stepping of the hard threshold.
    return ndimage.gaussian_filter(mask.astype(np.float32), sigma=0.7)


def _fill_small_holes(mask: np.ndarray) -> np.ndarray:
    """Close the specks inside the object where its colour came near the background's, but keep
    real openings (a mug's handle, a ring) see-through."""
    filled = ndimage.binary_fill_holes(mask)
    holes, count = ndimage.label(filled & ~mask)
    if count == 0:
        return filled
    hole_sizes = ndimage.sum_labels(np.ones(mask.shape), holes, index=np.arange(1, count + 1))
    openings = 1 + np.flatnonzero(hole_sizes >= MIN_OPENING_SHARE * filled.sum())
    return filled & ~np.isin(holes, openings)


def _centre(rgba: PIL.Image.Image, size: int) -> PIL.Image.Image:
    """Crop to the object, scale its longer side to ``OBJECT_FILL * size`` and centre it on a clear
    square."""
    object_box = rgba.getchannel("A").point(lambda a: 255 if a > 127 else 0).getbbox()
    crop = rgba.crop(object_box)
    scale = OBJECT_FILL * size / max(crop.size)
    crop = crop.resize(
        (max(1, round(crop.width * scale)), max(1, round(crop.height * scale))),
        PIL.Image.Resampling.LANCZOS,
    )
    square = PIL.Image.new("RGBA", (size, size), (0, 0, 0, 0))
    square.paste(crop, ((size - crop.width) // 2, (size - crop.height) // 2))
    return square
