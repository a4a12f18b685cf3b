"""FaceDetector base interface and the registry mapping a config `type` literal to its implementation."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, Self

import numpy as np

from edge_agent.records import Detection

if TYPE_CHECKING:
    from edge_agent.detect.config import DetectorConfig


class DetectError(ValueError):
    """A frame the detector cannot use (empty, wrong shape or dtype); the caller logs, counts and skips it."""


class FaceDetector(abc.ABC):
    """Finds faces in a BGR uint8 frame; boxes and keypoints come back in that frame's pixel coordinates."""

    @abc.abstractmethod
    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """Faces in the frame, highest score first. Raises DetectError for an unusable frame."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the interpreters; detect() must not be called afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


DetectorFactory = Callable[["DetectorConfig"], FaceDetector]
_REGISTRY: dict[str, DetectorFactory] = {}


def register(type_name: str) -> Callable[[DetectorFactory], DetectorFactory]:
    """Class decorator: make `type = "<type_name>"` in the [detector] config build this class."""

    def deco(factory: DetectorFactory) -> DetectorFactory:
        _REGISTRY[type_name] = factory
        return factory

    return deco


def registered_types() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def create_detector(config: DetectorConfig) -> FaceDetector:
    """Build the detector named by config.type (raises ModelLoadError, one line, when its model is unusable)."""
    # Importing the plugin modules fills the registry.
    from edge_agent.detect import blazeface  # noqa: F401

    try:
        factory = _REGISTRY[config.type]
    except KeyError:
        raise ValueError(f"unknown detector type {config.type!r}; known: {', '.join(registered_types())}") from None
    return factory(config)


def check_image(image: object) -> np.ndarray:
    """A BGR uint8 HxWx3 view of the frame; grey and BGRA frames are converted. Raises DetectError otherwise."""
    import cv2

    if not isinstance(image, np.ndarray):
        raise DetectError(f"frame is {type(image).__name__}, not a numpy array")
    if image.dtype != np.uint8:
        raise DetectError(f"frame dtype is {image.dtype}, expected uint8")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim != 3 or image.shape[2] != 3:
        raise DetectError(f"frame shape {image.shape} is not HxWx3")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise DetectError(f"frame shape {image.shape} is too small")
    return image
