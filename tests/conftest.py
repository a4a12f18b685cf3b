"""Shared pytest fixtures: paths to ../shared (skipping cleanly when absent) and per-subsystem fixture plugins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGE_AGENT_SHARED", REPO.parent / "shared"))

# Fixture modules owned by each subsystem live in tests/fixtures/; list them here.
pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.media",
]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the repo; tests that need it are skipped on a fresh machine."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture(scope="session")
def utkface_dir(shared_dir: Path) -> Path:
    d = shared_dir / "data" / "utkface"
    if not d.is_dir():
        pytest.skip("../shared/data/utkface is not present")
    return d


@pytest.fixture(scope="session")
def face_video(shared_dir: Path) -> Path:
    p = shared_dir / "data" / "video" / "face.mp4"
    if not p.is_file():
        pytest.skip("../shared/data/video/face.mp4 is not present")
    return p
