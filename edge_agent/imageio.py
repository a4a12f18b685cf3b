"""Still-image reading shared by every path (folder source, `classify`, `annotate`): checked, then decoded.

A 30000x30000 PNG of a few hundred kilobytes decodes to gigabytes, so the pixel count is read from the file's
header (Pillow parses PNG IHDR, JPEG SOF, BMP/TIFF/WebP/PNM headers without touching the pixel data) and checked
against a limit BEFORE OpenCV decodes anything. The bytes are read once, so the header that was checked is the
header that is decoded. Every refusal is an `ImageSkip` with a short counter key and a one-line reason, so each
command reports a bad image the same way: counted, one line, with its name.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from edge_agent.capture.config import DEFAULT_MAX_IMAGE_PIXELS, IMAGE_EXTENSIONS

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = DEFAULT_MAX_IMAGE_PIXELS
DEFAULT_MAX_FILE_MB = 50.0

# Pillow is only asked for headers here; the configured limit below replaces its own global bomb check, whose
# warning/error thresholds (89 / 179 Mpx) would otherwise pre-empt ours with a less useful message.
Image.MAX_IMAGE_PIXELS = None


class ImageSkip(ValueError):
    """One image that cannot be used. `reason` is a counter key (e.g. `too_many_pixels`); str() is one line."""

    def __init__(self, path: Path, reason: str, detail: str) -> None:
        super().__init__(f"{path}: skipped ({reason}): {detail}")
        self.path = path
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """What an image may cost before it is decoded."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_file_mb: float = DEFAULT_MAX_FILE_MB


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What the header declares: size and format, read without decoding a pixel."""

    width: int
    height: int
    format: str

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_bytes(path: Path, limits: ImageLimits) -> bytes:
    """The file's bytes, refusing missing, empty and oversized files before reading them."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageSkip(path, "vanished", "no such file") from None
    except OSError as exc:
        raise ImageSkip(path, "unreadable", exc.strerror or str(exc)) from None
    if not path.is_file():
        raise ImageSkip(path, "not_a_file", "not a regular file")
    if size == 0:
        raise ImageSkip(path, "empty_file", "0 bytes")
    if size > limits.max_file_mb * 1e6:
        raise ImageSkip(path, "file_too_large", f"{size / 1e6:.0f} MB, limit {limits.max_file_mb:g} MB")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImageSkip(path, "unreadable", exc.strerror or str(exc)) from None


def probe(data: bytes, path: Path) -> ImageHeader:
    """Width, height and format from the header alone (Pillow opens lazily and decodes nothing here)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. truncated EXIF: the decoder below decides usability
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
                fmt = str(im.format or "unknown")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageSkip(path, "not_an_image", "not a recognised image format") from None
    if width <= 0 or height <= 0:
        raise ImageSkip(path, "bad_header", f"header declares {width}x{height}")
    return ImageHeader(int(width), int(height), fmt)


def check_pixels(header: ImageHeader, path: Path, limits: ImageLimits) -> None:
    """Refuse an image whose declared pixel count exceeds the limit (the decompression-bomb guard)."""
    if header.pixels > limits.max_pixels:
        raise ImageSkip(
            path,
            "too_many_pixels",
            f"{header.format} {header.width}x{header.height} = {header.pixels / 1e6:.0f} Mpx, "
            f"limit {limits.max_pixels / 1e6:g} Mpx",
        )


def decode(path: Path, limits: ImageLimits = ImageLimits()) -> np.ndarray:
    """Decode one still image as OpenCV reads it (grey and 16-bit kept; EXIF orientation applied), or ImageSkip."""
    data = read_bytes(path, limits)
    check_pixels(probe(data, path), path, limits)
    # ANYCOLOR|ANYDEPTH keeps grey and 16-bit as they are (normalisation converts and counts them) but, unlike
    # IMREAD_UNCHANGED, still applies EXIF orientation.
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
    if img is None:
        raise ImageSkip(path, "undecodable", "the header is readable but the pixel data is not (truncated?)")
    if img.shape[0] * img.shape[1] > limits.max_pixels:  # the header lied; refuse what it should have said
        raise ImageSkip(path, "too_many_pixels", f"decoded {img.shape[1]}x{img.shape[0]}")
    return img


def read_bgr(path: Path, limits: ImageLimits = ImageLimits(), max_side: int = 4096, min_side: int = 16) -> np.ndarray:
    """A BGR uint8 image ready for inference (converted and downscaled as frames are), or ImageSkip."""
    from edge_agent.capture.frames import normalize_frame

    norm = normalize_frame(decode(path, limits), max_side=max_side, min_side=min_side)
    if norm.image is None:
        raise ImageSkip(path, norm.skip or "unusable", "unusable image")
    return norm.image


def list_images(folder: Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files of a folder (by extension, case-insensitive) in name order."""
    exts = tuple(e.lower() for e in extensions)
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in exts and p.is_file())


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; directories become their image files in name order."""
    out: list[Path] = []
    for p in paths:
        out.extend(list_images(p) if p.is_dir() else [p])
    return out


class SkipCounter:
    """Counts skipped images by reason and logs each one as a single warning line naming the file."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.counts: Counter[str] = Counter()

    def skip(self, exc: ImageSkip) -> None:
        self.counts[exc.reason] += 1
        log.warning("%s: %s", self.what, exc)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """`3 skipped (too_many_pixels 1, undecodable 2)`, or '' when nothing was skipped."""
        if not self.counts:
            return ""
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        return f"{self.total} image(s) skipped ({parts})"
