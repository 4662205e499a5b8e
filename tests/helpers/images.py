"""Image files, good and bad, built in memory."""

import io
import struct
import zlib

from PIL import ExifTags, Image, PngImagePlugin


def encoded(image_format: str, size=(16, 12), **options) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", size, (200, 40, 40))
    image.putpixel((0, 0), (1, 2, 3))
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def png(size=(16, 12)) -> bytes:
    return encoded("PNG", size)


def mpo() -> bytes:
    """A JPEG with a Multi-Picture index, as many cameras write; Pillow calls it MPO."""
    return encoded("MPO", save_all=True, append_images=[Image.new("RGB", (16, 12), "blue")])


def truncated_png() -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("L", (64, 64), bytes(range(256)) * 16).save(buffer, "PNG")
    data = buffer.getvalue()
    return data[: len(data) // 2]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims the given dimensions: a decompression bomb's shape."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


# What a phone writes about a photo: where, on what, and how to turn it.
PHONE = "PhoneCo Pocket 9"
PLACE = "the-photographers-home"


def phone_photo(image_format: str) -> bytes:
    """A 16 x 12 photo (top-left pixel marked) to be shown turned a quarter clockwise (EXIF
    orientation 6), with the phone's make, GPS coordinates and XMP."""
    image = Image.new("RGB", (16, 12), (200, 40, 40))
    image.paste((0, 0, 255), (0, 0, 4, 4))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = PHONE
    exif[ExifTags.Base.Orientation] = 6
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 22.0, 12.5)
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><location>{PLACE}</location></x:xmpmeta>'
    options = {"exif": exif}
    if image_format == "PNG":
        options["pnginfo"] = PngImagePlugin.PngInfo()
        options["pnginfo"].add_itxt("XML:com.adobe.xmp", xmp)
    else:
        options["xmp"] = xmp.encode()
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()
