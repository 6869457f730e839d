"""Avatar images checked by content: PNG, JPEG or WebP, at most 1 MiB and 4096 x 4096 pixels.

The name and the declared Content-Type of an upload mean nothing. An image is accepted when its first bytes
are the signature of one of the three formats AND Pillow decodes the whole image in that same format (so
a script, an HTML page or an SVG renamed `.png`, a polyglot with an image header and a broken body, or a
decompression bomb are all refused). The bytes are stored as uploaded and served with the Content-Type of
the format found, with `X-Content-Type-Options: nosniff`.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

MAX_IMAGE_BYTES = 1024 * 1024
MAX_SIDE_PIXELS = 4096

SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG", "image/png"),
    (b"\xff\xd8\xff", "JPEG", "image/jpeg"),
)


class ImageRefused(Exception):
    """Not an acceptable avatar image; the message says why."""


def sniff(data: bytes) -> tuple[str, str] | None:
    """(Pillow format, content type) from the file signature, or None."""
    for signature, image_format, content_type in SIGNATURES:
        if data.startswith(signature):
            return image_format, content_type
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP", "image/webp"
    return None


def check_avatar(data: bytes) -> str:
    """The content type of `data` if it is an acceptable avatar image; raises `ImageRefused` otherwise.

    Decoding takes up to tens of milliseconds: call it in a worker thread.
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRefused(f"an avatar image is at most {MAX_IMAGE_BYTES} bytes")
    found = sniff(data)
    if found is None:
        raise ImageRefused("an avatar image must be PNG, JPEG or WebP (checked by content, not by name)")
    image_format, content_type = found
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[image_format]) as image:
                width, height = image.size
                if width > MAX_SIDE_PIXELS or height > MAX_SIDE_PIXELS:
                    raise ImageRefused(f"an avatar image is at most {MAX_SIDE_PIXELS} x {MAX_SIDE_PIXELS} pixels")
                image.load()  # decode every pixel: a valid header on a broken body fails here
    except ImageRefused:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError, Warning) as exc:
        raise ImageRefused(f"the file is not a valid {image_format} image ({exc})") from None
    return content_type
