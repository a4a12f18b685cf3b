"""File sources: a video file (optionally looping, paced at its fps) and a folder of still images in name order.

A folder is a set of independent photos by default: the daemon gives each image its own visits and summary
(see `daemon/analytics_adapter.py`); `sequence = true` makes it frames of one camera, tracked across images.
"""

from __future__ import annotations

import bisect
import logging
from pathlib import Path

import cv2
import numpy as np

from edge_agent import imageio
from edge_agent.capture.base import BadFrame, FrameSource, Pacer, SourceError, register_source
from edge_agent.capture.config import FileSourceConfig, FolderSourceConfig
from edge_agent.capture.opencv_sources import quiet_opencv_logs

log = logging.getLogger(__name__)

_DEFAULT_FPS = 25.0


@register_source("file")
class FileSource(FrameSource):
    """A video file through FFmpeg. At the end it loops (by reopening, which also notices a vanished file) or ends."""

    cfg: FileSourceConfig

    def __init__(self, cfg: FileSourceConfig) -> None:
        super().__init__(cfg)
        self.paced = cfg.realtime
        self._cap: cv2.VideoCapture | None = None
        self._pacer = Pacer(None)
        self.fps = cfg.fps or _DEFAULT_FPS
        self.frames_read = 0  # frames grabbed since the last (re)open

    @property
    def frame_interval(self) -> float:
        return self._pacer.interval

    def open(self) -> None:
        self.close()
        self.eof = False
        self._cap = self._open_capture()
        fps = self.cfg.fps or _sane_fps(self._cap.get(cv2.CAP_PROP_FPS))
        self.fps = fps  # the file's own rate, also when read unpaced (annotate writes its output at it)
        self._pacer = Pacer(fps if self.cfg.realtime else None)
        self.frames_read = 0
        log.info("opened video file %s (%.1f fps%s)", self.cfg.path, fps, ", looping" if self.cfg.loop else "")

    def _open_capture(self) -> cv2.VideoCapture:
        path = self.cfg.path
        if not path.is_file():
            raise SourceError(f"video file not found: {path}")
        if path.stat().st_size == 0:
            raise SourceError(f"video file is empty (0 bytes): {path}")
        quiet_opencv_logs()
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"video file {path}: cannot decode (not a video, truncated, or an unsupported codec)")
        return cap

    def grab(self) -> bool:
        if self._cap is None:
            return False
        if not self._pacer.wait(self.stop_event):
            return False
        if self._cap.grab():
            self.frames_read += 1
            return True
        if not self.cfg.loop:
            log.info("video file %s ended after %d frames", self.cfg.path, self.frames_read)
            self.eof = True
            return False
        return self._rewind()

    def _rewind(self) -> bool:
        """Reopen at the start (seeking is unreliable across containers); False if the file is gone or empty."""
        if self.frames_read == 0:
            return False  # an empty pass: don't spin reopening a file with no readable frames
        try:
            cap = self._open_capture()
        except SourceError as exc:
            log.warning("cannot loop: %s", exc)
            return False
        self.close()
        self._cap = cap
        self.frames_read = 0
        if self._cap.grab():
            self.frames_read = 1
            return True
        return False

    def retrieve(self) -> np.ndarray | None:
        if self._cap is None:
            return None
        ok, img = self._cap.retrieve()
        return img if ok else None

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


@register_source("folder")
class FolderSource(FrameSource):
    """Still images in name order; unreadable files are skipped one by one (BadFrame), never ending the loop."""

    cfg: FolderSourceConfig

    def __init__(self, cfg: FolderSourceConfig) -> None:
        super().__init__(cfg)
        self.paced = cfg.fps > 0
        self._pacer = Pacer(cfg.fps or None)
        self._files: list[Path] = []
        self._i = -1
        self._last_name: str | None = None  # so a reopen after a stall resumes instead of starting over
        self._limits = imageio.ImageLimits(max_pixels=cfg.max_pixels, max_file_mb=cfg.max_file_mb)

    @property
    def frame_interval(self) -> float:
        return self._pacer.interval

    def _scan(self) -> list[Path]:
        folder = self.cfg.path
        if not folder.is_dir():
            raise SourceError(f"image folder not found: {folder}")
        exts = tuple(e.lower() for e in self.cfg.extensions)
        try:
            files = imageio.list_images(folder, exts)
        except OSError as exc:
            raise SourceError(f"image folder {folder}: cannot list ({exc.strerror or exc})") from None
        if not files:
            raise SourceError(f"image folder {folder}: no images ({', '.join(exts)})")
        return files

    def open(self) -> None:
        self.eof = False
        self._files = self._scan()
        # Resume after the last image handed out (name order), so a reopen does not repeat the folder.
        names = [p.name for p in self._files]
        self._i = bisect.bisect_right(names, self._last_name) - 1 if self._last_name is not None else -1
        self._pacer.reset()
        log.info(
            "opened image folder %s (%d images%s)",
            self.cfg.path,
            len(self._files),
            ", looping" if self.cfg.loop else "",
        )

    def grab(self) -> bool:
        if not self._files:
            return False
        if not self._pacer.wait(self.stop_event):
            return False
        if self._i + 1 < len(self._files):
            self._i += 1
            self._last_name = self._files[self._i].name
            return True
        if not self.cfg.loop:
            self.eof = True
            return False
        try:
            self._files = self._scan()  # pick up added/removed files on every pass
        except SourceError as exc:
            log.warning("cannot loop: %s", exc)
            self._files = []
            return False
        self._i = 0
        self._last_name = self._files[0].name
        return True

    def retrieve(self) -> np.ndarray | None:
        if not 0 <= self._i < len(self._files):
            return None
        return self._load(self._files[self._i])

    def _load(self, path: Path) -> np.ndarray:
        # The shared still-image reader: the header's pixel count is checked before any pixel is decoded.
        try:
            return imageio.decode(path, self._limits)
        except imageio.ImageSkip as exc:
            raise BadFrame(exc.reason, f"{path}: {exc.detail}", item=path.name) from None

    def close(self) -> None:
        self._files = []


def _sane_fps(fps: float) -> float:
    # Containers without timing (raw MJPEG, some AVIs) report 0 or absurd values like 90000.
    return fps if 1.0 <= fps <= 240.0 else _DEFAULT_FPS
