"""The [[cameras]] config section: one camera = an id, a source (discriminated by `type`), an fps cap and a watchdog."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
# The decompression-bomb guard for still images: 50 Mpx passes the largest phone photos and decodes to 150 MB.
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
_CAMERA_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class SourceSpecError(ValueError):
    """A `--source` string that names no usable source (a usage error: exit 2)."""


class V4L2SourceConfig(BaseModel):
    """A local camera through Video4Linux2."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["v4l2"] = Field("v4l2", description="Source kind (registry key).")
    device: int | str = Field(0, description="Camera index (0) or device path (/dev/video0).")
    width: int | None = Field(640, ge=16, le=8192, description="Requested width in pixels; None keeps the driver's.")
    height: int | None = Field(480, ge=16, le=8192, description="Requested height in pixels; None keeps the driver's.")
    fps: float | None = Field(30.0, gt=0, le=240, description="Requested camera frame rate; None keeps the driver's.")
    fourcc: str | None = Field(
        "MJPG", description="Pixel format asked of the camera, e.g. MJPG (cheap USB bandwidth) or YUYV; None: driver's."
    )
    buffer_size: int = Field(1, ge=1, le=32, description="Driver buffers; 1 keeps latency low.")

    @field_validator("fourcc")
    @classmethod
    def _fourcc_is_four_chars(cls, v: str | None) -> str | None:
        if v is not None and len(v) != 4:
            raise ValueError(f"fourcc must be 4 characters like 'MJPG' or 'YUYV', got {v!r}")
        return v

    @field_validator("device")
    @classmethod
    def _device_form(cls, v: int | str) -> int | str:
        if isinstance(v, int):
            if v < 0:
                raise ValueError(f"device index must be >= 0, got {v}")
            return v
        if v.isdigit():
            return int(v)
        if not v.startswith("/dev/"):
            raise ValueError(f"device must be an index or a /dev/video* path, got {v!r}")
        return v


class StreamSourceConfig(BaseModel):
    """A network stream (RTSP, or HTTP MJPEG) decoded by OpenCV's FFmpeg backend."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["stream"] = Field("stream", description="Source kind (registry key).")
    url: str = Field(
        "rtsp://127.0.0.1:8554/cam",
        description="rtsp://, rtsps://, rtmp://, http:// or https:// URL. Credentials in it are redacted in logs.",
    )
    open_timeout_s: float = Field(5.0, gt=0, le=120, description="Give up opening after this many seconds.")
    read_timeout_s: float = Field(5.0, gt=0, le=120, description="A read that waits longer than this fails.")
    rtsp_transport: Literal["tcp", "udp"] = Field(
        "tcp", description="RTSP transport; tcp avoids smeared frames on lossy networks."
    )

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, v: str) -> str:
        scheme = urlsplit(v).scheme.lower()
        if scheme not in STREAM_SCHEMES:
            raise ValueError(f"url must start with one of {', '.join(s + '://' for s in STREAM_SCHEMES)}")
        if not urlsplit(v).hostname:
            raise ValueError("url has no host")
        return v


class FileSourceConfig(BaseModel):
    """A video file, played at its own frame rate like a camera (or as fast as it decodes)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["file"] = Field("file", description="Source kind (registry key).")
    path: Path = Field(Path("clip.mp4"), description="Video file to read.")
    loop: bool = Field(False, description="Start again at the end; False ends the camera (status offline, eof).")
    realtime: bool = Field(True, description="Pace reads at the file's fps; False reads as fast as it decodes.")
    fps: float | None = Field(None, gt=0, le=1000, description="Pacing rate; None uses the file's own fps.")


class FolderSourceConfig(BaseModel):
    """A folder of still images, read in name order: independent photos, or (`sequence`) frames of one camera."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["folder"] = Field("folder", description="Source kind (registry key).")
    path: Path = Field(Path("images"), description="Folder holding the images.")
    sequence: bool = Field(
        False,
        description="False: every image is its own scene, with its own visits and summary counts. True: the "
        "images are frames of one camera (a time-lapse, an exported clip) and faces are tracked across them.",
    )
    loop: bool = Field(False, description="Start again after the last image; False ends the camera (eof).")
    fps: float = Field(0.0, ge=0, le=1000, description="Images per second; 0 reads as fast as they decode.")
    extensions: tuple[str, ...] = Field(IMAGE_EXTENSIONS, description="File name endings read (case-insensitive).")
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this are skipped unread (counted).")
    max_pixels: int = Field(
        DEFAULT_MAX_IMAGE_PIXELS,
        ge=1024,
        description="Images whose header declares more pixels than this are skipped before decoding (counted): "
        "the decompression-bomb guard. 50 Mpx decodes to 150 MB.",
    )


class DemoSourceConfig(BaseModel):
    """A SYNTHETIC source: a public-domain face photo moved across a background. No camera or data needed."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["demo"] = Field("demo", description="Source kind (registry key).")
    width: int = Field(640, ge=64, le=4096, description="Frame width in pixels.")
    height: int = Field(480, ge=64, le=4096, description="Frame height in pixels.")
    fps: float = Field(15.0, gt=0, le=1000, description="Frames per second (paced).")
    faces: int = Field(1, ge=1, le=3, description="How many faces walk through the scene (staggered).")
    seed: int = Field(0, ge=0, description="Same seed, same frames.")
    loop: bool = Field(True, description="Repeat the scene forever; False ends after one cycle (eof).")
    cycle_s: float = Field(12.0, ge=1.0, le=600.0, description="Seconds per cycle: enter, stay, leave, empty.")


SourceConfig = Annotated[
    V4L2SourceConfig | StreamSourceConfig | FileSourceConfig | FolderSourceConfig | DemoSourceConfig,
    Field(discriminator="type"),
]


class WatchdogConfig(BaseModel):
    """When a camera counts as stalled and how fast it is reopened."""

    model_config = ConfigDict(extra="forbid")

    stall_timeout_s: float = Field(
        10.0, gt=0, le=3600, description="No frame for this long: status stalled, and the source is reopened."
    )
    max_read_failures: int = Field(3, ge=1, le=1000, description="Consecutive failed reads before a reopen.")
    backoff_min_s: float = Field(0.5, gt=0, le=3600, description="First reopen delay; doubles per failed attempt.")
    backoff_max_s: float = Field(30.0, gt=0, le=86400, description="Longest reopen delay.")
    backoff_jitter: float = Field(0.2, ge=0, lt=1, description="Random +/- fraction added to each delay.")

    @model_validator(mode="after")
    def _min_below_max(self) -> WatchdogConfig:
        if self.backoff_min_s > self.backoff_max_s:
            raise ValueError(
                f"backoff_min_s ({self.backoff_min_s}) must not exceed backoff_max_s ({self.backoff_max_s})"
            )
        return self


class FrameLimits(BaseModel):
    """Sanity limits applied to every frame before it reaches inference."""

    model_config = ConfigDict(extra="forbid")

    max_side: int = Field(1920, ge=64, le=16384, description="Longer sides are downscaled to this (counted).")
    min_side: int = Field(32, ge=1, le=4096, description="Frames with a shorter side are skipped (counted).")


class CameraConfig(BaseModel):
    """One [[cameras]] table."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field("cam0", description="Camera id used in MQTT topics: letters, digits, _ and - only.")
    enabled: bool = Field(True, description="False: configured but not started.")
    source: SourceConfig = Field(default_factory=DemoSourceConfig, description="Where frames come from, by `type`.")
    max_fps: float = Field(
        15.0, ge=0, le=1000, description="Analysis frame-rate cap; extra frames are grabbed, not decoded. 0: no cap."
    )
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig, description="Stall detection and reopening.")
    limits: FrameLimits = Field(default_factory=FrameLimits, description="Frame size limits.")

    @field_validator("id")
    @classmethod
    def _id_is_topic_safe(cls, v: str) -> str:
        if not _CAMERA_ID.match(v):
            raise ValueError(
                f"camera id must be 1-64 of letters, digits, _ or - (it is an MQTT topic level), got {v!r}"
            )
        return v


def source_from_string(spec: str) -> SourceConfig:
    """Turn a `--source` string into a source config: demo, 0, /dev/video0, a URL, a video file or a folder."""
    s = spec.strip()
    if not s:
        raise SourceSpecError("--source is empty; give demo, a camera index, /dev/videoN, a URL, a file or a folder")
    if s == "demo":
        return DemoSourceConfig()
    if s.isdigit() or s.startswith("/dev/"):
        return V4L2SourceConfig(device=s)
    if "://" in s:
        if urlsplit(s).scheme.lower() == "file":
            s = urlsplit(s).path
        else:
            try:
                return StreamSourceConfig(url=s)
            except ValueError as exc:
                raise SourceSpecError(f"--source {redact_url(s)}: not a usable stream URL") from exc
    p = Path(s).expanduser()
    if p.is_dir():
        return FolderSourceConfig(path=p)
    if p.is_file():
        return FileSourceConfig(path=p)
    raise SourceSpecError(f"--source {s}: no such file or folder (or use demo, a camera index, /dev/videoN, a URL)")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return parts._replace(netloc=f"{user}:***@{host}{port}").geturl()


def describe_source(cfg: SourceConfig) -> str:
    """Short human description for logs (never contains a password)."""
    if isinstance(cfg, V4L2SourceConfig):
        return f"v4l2 {cfg.device}"
    if isinstance(cfg, StreamSourceConfig):
        return f"stream {redact_url(cfg.url)}"
    if isinstance(cfg, (FileSourceConfig, FolderSourceConfig)):
        return f"{cfg.type} {cfg.path}"
    return f"demo (synthetic) {cfg.width}x{cfg.height}@{cfg.fps:g}fps seed={cfg.seed}"
