"""Photo uploads: accept JPEG or PNG only and store only a re-encoded copy with no metadata (security.md R58).

``clean_photo`` works on the bytes and never trusts the file name or the browser's Content-Type. It:

1. refuses empty and oversized files;
2. checks the magic bytes (JPEG ``FF D8 FF``, PNG signature), so a PDF or HTML file renamed ``.jpg`` is refused;
3. reads the declared width and height from the PNG IHDR or JPEG SOF header with a small parser of its own,
   then again from Pillow's lazy ``Image.open`` (which reads only the header). An image over ``max_pixels``
   is refused before any pixel is decoded or allocated. Inside the function ``DecompressionBombWarning``
   is an error, so Pillow's own bomb check can never just warn;
4. runs ``verify()`` on one open and decodes a second open (Pillow needs a fresh open after ``verify``);
5. applies the EXIF orientation, converts to RGB (alpha flattened onto white, 16-bit grey scaled to 8-bit),
   scales down so the longest edge is at most ``max_edge``, and copies the pixels into a fresh ``Image.new``
   image. The fresh image has an empty ``.info``, so no EXIF, GPS, XMP, IPTC, ICC profile or comment can
   carry over (a plain re-save keeps the JPEG comment: stack.md §8);
6. encodes a baseline JPEG at quality 85 and checks the result has no APP1–APP15 or COM segments.

Pixel limits are enforced by our own comparisons, so ``Image.MAX_IMAGE_PIXELS`` is not changed. Changing it
would affect every thread. Pillow's own limit (about 89.5 MP by default) still applies on top, so a
``max_pixels`` above it has no effect. Two caveats: ``warnings.catch_warnings`` changes the process-wide
filter list on Python 3.11, so while a photo is being cleaned another thread also sees
``DecompressionBombWarning`` as an error; that side effect only makes other threads stricter.
``Image.LOAD_TRUNCATED_IMAGES`` must stay False (the default), so a truncated file is refused.

Colour profiles are dropped, not applied: converting through an untrusted ICC profile would mean more parsing
of attacker-controlled data, and a small colour shift in wide-gamut photos is acceptable for this service.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Final, Literal

from PIL import Image, ImageOps

from .errors import (
    MSG_EMPTY,
    MSG_NOT_PHOTO,
    MSG_UNREADABLE_PHOTO,
    UploadRejectedError,
    too_big_message,
    too_many_pixels_message,
)

JPEG_MAGIC: Final = b"\xff\xd8\xff"
PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
JPEG_QUALITY: Final = 85
_WHITE: Final = (255, 255, 255)

# SOF0–SOF15 carry the frame size; C4 (DHT), C8 (JPG extension) and CC (DAC) share the range but do not.
_JPEG_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Segments that would carry metadata in our output: APP1 (Exif/XMP) … APP15, including APP2 (ICC) and APP13
# (IPTC/Photoshop), and COM.
_METADATA_MARKERS: Final = frozenset(range(0xE1, 0xF0)) | {0xFE}

_Kind = Literal["JPEG", "PNG"]


@dataclass(frozen=True)
class CleanPhoto:
    """A re-encoded photo, safe to store. ``data`` is always a JPEG with no metadata."""

    data: bytes
    media_type: str
    width: int
    height: int
    sha256: str


def clean_photo(
    data: bytes,
    *,
    max_bytes: int = 10 * 1024 * 1024,
    max_pixels: int = 25_000_000,
    max_edge: int = 2000,
) -> CleanPhoto:
    """Check an uploaded photo and return a clean re-encoded JPEG, or raise ``UploadRejectedError``."""
    if not data:
        raise UploadRejectedError(MSG_EMPTY)
    if len(data) > max_bytes:
        raise UploadRejectedError(too_big_message(max_bytes))
    kind = _sniff(data)
    if kind is None:
        raise UploadRejectedError(MSG_NOT_PHOTO)

    declared = _declared_size(data, kind)
    if declared is not None:
        _check_pixels(*declared, max_pixels=max_pixels)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            jpeg, (width, height) = _reencode(_decode(data, kind, max_pixels=max_pixels), max_edge=max_edge)
    except UploadRejectedError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadRejectedError(too_many_pixels_message(max_pixels)) from exc
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, EOFError, struct.error …
        raise UploadRejectedError(MSG_UNREADABLE_PHOTO) from exc

    _assert_no_metadata_segments(jpeg)
    return CleanPhoto(
        data=jpeg,
        media_type="image/jpeg",
        width=width,
        height=height,
        sha256=hashlib.sha256(jpeg).hexdigest(),
    )


def _sniff(data: bytes) -> _Kind | None:
    if data.startswith(JPEG_MAGIC):
        return "JPEG"
    if data.startswith(PNG_MAGIC):
        return "PNG"
    return None


def _check_pixels(width: int, height: int, *, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise UploadRejectedError(too_many_pixels_message(max_pixels))


def _declared_size(data: bytes, kind: _Kind) -> tuple[int, int] | None:
    """The (width, height) the header declares, without Pillow; None if it cannot be found."""
    if kind == "PNG":
        # Signature (8), then the first chunk must be IHDR: length (4), type (4), width (4), height (4).
        if len(data) >= 24 and data[12:16] == b"IHDR":
            return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        return None
    return _jpeg_declared_size(data)


def _jpeg_declared_size(data: bytes) -> tuple[int, int] | None:
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            return None
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            return None
        marker = data[i]
        i += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM and RSTn have no length
            continue
        if marker in (0xD9, 0xDA):  # EOI or SOS before any frame header
            return None
        if i + 2 > n:
            return None
        length = int.from_bytes(data[i : i + 2], "big")
        if length < 2:
            return None
        if marker in _JPEG_SOF_MARKERS:
            if i + 7 > n:
                return None
            # length (2), precision (1), height (2), width (2)
            return int.from_bytes(data[i + 5 : i + 7], "big"), int.from_bytes(data[i + 3 : i + 5], "big")
        i += length
    return None


def _decode(data: bytes, kind: _Kind, *, max_pixels: int) -> Image.Image:
    """Verify, then decode into an RGB image with the EXIF orientation applied. Call with bomb warnings as errors."""
    formats = (kind,)
    accepted = {"JPEG", "MPO"} if kind == "JPEG" else {"PNG"}
    with Image.open(io.BytesIO(data), formats=formats) as probe:
        if probe.format not in accepted:
            raise UploadRejectedError(MSG_NOT_PHOTO)
        _check_pixels(*probe.size, max_pixels=max_pixels)
        probe.verify()
    with Image.open(io.BytesIO(data), formats=formats) as img:
        _check_pixels(*img.size, max_pixels=max_pixels)
        img.load()
        upright = ImageOps.exif_transpose(img)
        return _to_rgb(upright)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        # 16-bit grey: convert("RGB") would clip every value above 255 to white, so scale to 8 bits first.
        img = img.convert("I").point(lambda v: v / 256).convert("L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return img.convert("RGB")


def _scaled_size(size: tuple[int, int], max_edge: int) -> tuple[int, int]:
    width, height = size
    scale = max_edge / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _reencode(rgb: Image.Image, *, max_edge: int) -> tuple[bytes, tuple[int, int]]:
    if max(rgb.size) > max_edge:
        rgb = rgb.resize(_scaled_size(rgb.size, max_edge), Image.Resampling.LANCZOS)
    # A fresh image has an empty .info: nothing from the upload (EXIF, XMP, ICC, comment …) can be carried over.
    fresh = Image.new("RGB", rgb.size, _WHITE)
    fresh.paste(rgb)
    out = io.BytesIO()
    fresh.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue(), fresh.size


def _assert_no_metadata_segments(jpeg: bytes) -> None:
    """Walk the JPEG segments up to the scan; the output must have no APP1–APP15 or COM segment."""
    i, n = 2, len(jpeg)
    while i + 4 <= n and jpeg[i] == 0xFF:
        marker = jpeg[i + 1]
        if marker == 0xDA:
            return
        if marker in _METADATA_MARKERS:
            raise RuntimeError(f"re-encoded photo unexpectedly contains JPEG marker 0x{marker:02X}")
        i += 2 + int.from_bytes(jpeg[i + 2 : i + 4], "big")
    raise RuntimeError("re-encoded photo is not a well-formed JPEG")
