"""Live sources through cv2.VideoCapture: a V4L2 camera and an RTSP/HTTP(MJPEG) stream via the FFmpeg backend."""

from __future__ import annotations

import functools
import logging
import os
import threading
from abc import abstractmethod
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np

from edge_agent.capture.base import FrameSource, SourceError, register_source
from edge_agent.capture.config import StreamSourceConfig, V4L2SourceConfig, redact_url

log = logging.getLogger(__name__)

# OpenCV reads FFmpeg demuxer options from this environment variable at open time, so it is set under a lock.
_FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_ENV_LOCK = threading.Lock()


@functools.cache  # once per process
def quiet_opencv_logs() -> None:
    """Silence OpenCV's and FFmpeg's own lines on open/read failures: our SourceError says it in one line.

    Set OPENCV_FFMPEG_LOGLEVEL=24 (warnings) or 32 (info) in the environment to see FFmpeg's messages again.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")  # AV_LOG_FATAL; read by OpenCV when FFmpeg first opens
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


class VideoCaptureSource(FrameSource):
    """Shared grab/retrieve/close over one cv2.VideoCapture; subclasses only know how to open it."""

    def __init__(self, cfg: V4L2SourceConfig | StreamSourceConfig) -> None:
        super().__init__(cfg)
        self._cap: cv2.VideoCapture | None = None
        self.fps = 0.0  # the frame rate the open device or stream reports; 0 when unknown

    @abstractmethod
    def _open_capture(self) -> cv2.VideoCapture:
        """Create the VideoCapture (may return one that is not opened)."""

    @abstractmethod
    def _open_error(self) -> str:
        """One-line reason used when the capture did not open."""

    def open(self) -> None:
        self.close()
        quiet_opencv_logs()
        try:
            cap = self._open_capture()
        except cv2.error as exc:
            raise SourceError(f"{self._open_error()} ({_first_line(exc)})") from None
        if not cap.isOpened():
            cap.release()
            raise SourceError(self._open_error())
        self._cap = cap
        self._configure(cap)
        reported = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = reported if 1.0 <= reported <= 240.0 else 0.0  # what the device/stream says (annotate uses it)
        log.info(
            "opened %s: %dx%d @ %.1f fps",
            self.description,
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            cap.get(cv2.CAP_PROP_FPS),
        )

    def _configure(self, cap: cv2.VideoCapture) -> None:
        """Apply properties after opening (the V4L2 camera sets format, size and fps here)."""

    def grab(self) -> bool:
        if self._cap is None:
            return False
        try:
            return bool(self._cap.grab())
        except cv2.error as exc:
            log.debug("%s: grab failed: %s", self.description, _first_line(exc))
            return False

    def retrieve(self) -> np.ndarray | None:
        if self._cap is None:
            return None
        try:
            ok, img = self._cap.retrieve()
        except cv2.error:
            return None
        return img if ok else None

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


@register_source("v4l2")
class V4L2Source(VideoCaptureSource):
    """A USB/CSI camera through Video4Linux2 (index or /dev/video* path), asking for size, fps and fourcc."""

    cfg: V4L2SourceConfig

    @property
    def frame_interval(self) -> float:
        return 1.0 / self.cfg.fps if self.cfg.fps else 0.0

    def _device_path(self) -> str:
        dev = self.cfg.device
        return f"/dev/video{dev}" if isinstance(dev, int) else dev

    def _open_capture(self) -> cv2.VideoCapture:
        path = self._device_path()
        if not Path(path).exists():
            raise SourceError(f"camera {path}: no such device (unplugged, or not passed into the container/service?)")
        if not os.access(path, os.R_OK | os.W_OK):
            raise SourceError(f"camera {path}: permission denied (add the user to the 'video' group)")
        return cv2.VideoCapture(self.cfg.device, cv2.CAP_V4L2)

    def _open_error(self) -> str:
        return f"camera {self._device_path()}: cannot open (busy, or not a capture device)"

    def _configure(self, cap: cv2.VideoCapture) -> None:
        c = self.cfg
        # The fourcc must be set before the size: many UVC cameras only offer large sizes in MJPG.
        if c.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*c.fourcc))
        if c.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, c.width)
        if c.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, c.height)
        if c.fps:
            cap.set(cv2.CAP_PROP_FPS, c.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, c.buffer_size)


@register_source("stream")
class StreamSource(VideoCaptureSource):
    """An RTSP or HTTP(MJPEG) URL through FFmpeg, with open and read timeouts so a dead server cannot hang us."""

    cfg: StreamSourceConfig

    def _open_capture(self) -> cv2.VideoCapture:
        c = self.cfg
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(c.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(c.read_timeout_s * 1000),
        ]
        scheme = urlsplit(c.url).scheme.lower()
        with _ENV_LOCK:
            old = os.environ.get(_FFMPEG_OPTIONS_ENV)
            if scheme.startswith("rtsp") and old is None:
                os.environ[_FFMPEG_OPTIONS_ENV] = f"rtsp_transport;{c.rtsp_transport}"
            try:
                return cv2.VideoCapture(c.url, cv2.CAP_FFMPEG, params)
            finally:
                if old is None:
                    os.environ.pop(_FFMPEG_OPTIONS_ENV, None)

    def _open_error(self) -> str:
        # Say what happened (DNS, refused, timed out) instead of blaming a timeout for a refusal in 1 ms.
        from edge_agent.netdiag import probe_tcp

        parts = urlsplit(self.cfg.url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 554)
        reach = probe_tcp(parts.hostname or "", port, min(self.cfg.open_timeout_s, 3.0))
        if not reach.ok:
            return f"stream {redact_url(self.cfg.url)}: {reach.text}"
        return (
            f"stream {redact_url(self.cfg.url)}: the server answers on port {port} but the stream did not open "
            "(wrong path or credentials, or an unsupported codec)"
        )


_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "http": 80, "https": 443}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__
