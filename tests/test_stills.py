"""Stills are stills: a folder of photos is independent scenes by default, `sequence = true` tracks across them;
`classify` gates like the daemon and handles face crops. Real models, real photos, the daemon as a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge_agent.cli import main
from tests.fixtures.media import astronaut_bgr, cat_bgr, moving_face_frames
from tests.test_e2e import agent_env, models_dir  # noqa: F401

EXE = [sys.executable, "-m", "edge_agent"]
ASTRONAUT_FACE = (176, 75, 277, 176)  # BlazeFace's box on skimage's astronaut (x1, y1, x2, y2)


def _config(tmp_path: Path, source: str, extra: str = "") -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[agent]\nstate_dir = "{tmp_path / "state"}"\n[mqtt]\nport = 1\n'  # no broker: messages wait in the outbox
        f'[[cameras]]\nid = "cam0"\nmax_fps = 0\n[cameras.source]\ntype = "folder"\npath = "{source}"\n{extra}'
    )
    return cfg


def _run_print(cfg: Path, models: Path, cwd: Path) -> list[dict[str, Any]]:
    res = subprocess.run(
        [*EXE, "run", "-c", str(cfg), "--print", "--duration", "60"],
        env=agent_env(models),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    return [json.loads(line) for line in res.stdout.splitlines()]


def _ends(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("event") == "end"]


def _two_people_and_a_cat(folder: Path) -> None:
    """Two different framings (a portrait and a smaller mirrored one elsewhere), a cat, and a broken file."""
    folder.mkdir()
    photo = astronaut_bgr()
    cv2.imwrite(str(folder / "1_portrait.jpg"), photo)
    canvas = np.full((480, 640, 3), 110, np.uint8)
    small = cv2.resize(photo[:, ::-1], (300, 300), interpolation=cv2.INTER_AREA)
    canvas[150:450, 320:620] = small  # the face lands far from the first photo's box
    cv2.imwrite(str(folder / "2_elsewhere.jpg"), canvas)
    cv2.imwrite(str(folder / "3_cat.jpg"), cat_bgr())
    (folder / "4_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")


@pytest.mark.slow
def test_a_folder_of_photos_gives_one_visit_per_face_each_ending_with_its_image(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
) -> None:
    folder = tmp_path / "photos"
    _two_people_and_a_cat(folder)
    events = _run_print(_config(tmp_path, str(folder)), models_dir, tmp_path)
    ends = _ends(events)
    assert len(ends) == 2, events  # one per photo with a face; the cat and the broken file give none
    assert all(e["reason"] == "still" for e in ends)
    assert len({e["track_id"] for e in ends}) == 2


@pytest.mark.slow
def test_sequence_true_tracks_one_face_across_the_frames_of_a_folder(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(moving_face_frames(40)):  # ~5 px a frame: a face walking past
        cv2.imwrite(str(folder / f"frame_{i:03d}.jpg"), frame)
    # fps = 10: frames 0.1 s apart on the capture clock, like the time-lapse of one camera
    events = _run_print(_config(tmp_path, str(folder), "sequence = true\nfps = 10\n"), models_dir, tmp_path)
    ends = _ends(events)
    assert len(ends) == 1 and ends[0]["reason"] != "still", events
    assert ends[0]["dwell_s"] >= 3.0, ends[0]  # 40 frames at 10 fps: one visit of about 4 s


@pytest.mark.slow
def test_six_photos_of_six_people_are_six_visits(
    tmp_path: Path,
    shared_dir: Path,
    models_dir: Path,  # noqa: F811
) -> None:
    images = shared_dir / "data" / "aaf" / "images"
    if not images.is_dir():
        pytest.skip("../shared/data/aaf is not present")
    folder = tmp_path / "six"
    folder.mkdir()
    for name in ("01644A22.jpg", "04972A38.jpg", "06639A57.jpg", "00001A02.jpg", "03303A29.jpg", "08295A18.jpg"):
        shutil.copy(images / name, folder / name)
    ends = _ends(_run_print(_config(tmp_path, str(folder)), models_dir, tmp_path))
    assert len(ends) == 6 and len({e["track_id"] for e in ends}) == 6
    adults = [e for e in ends if not e.get("minor")]
    assert adults and all(e["attributes"]["gender"]["label"] != "unknown" for e in adults), adults


def _classify(*args: str, models: Path) -> tuple[int, list[dict[str, Any]], str]:
    res = CliRunner().invoke(main, ["classify", *args], env={"EDGE_AGENT_MODELS_DIR": str(models)})
    return res.exit_code, [json.loads(line) for line in res.stdout.splitlines()], res.stderr


def _chip(image: np.ndarray, box: tuple[int, int, int, int], frac: float = 0.8, size: int = 200) -> np.ndarray:
    """A UTKFace-style chip: a square whose centre 80 % is the face, resized to 200x200 (no background)."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) / frac
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    a, b = int(cx - side / 2), int(cy - side / 2)
    return cv2.resize(image[max(b, 0) : b + int(side), max(a, 0) : a + int(side)], (size, size))


def test_classify_face_crop_classifies_a_tight_chip_that_detection_misses(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
) -> None:
    chip = tmp_path / "chip.jpg"
    cv2.imwrite(str(chip), _chip(astronaut_bgr(), ASTRONAUT_FACE, frac=1.0))
    code, (plain,), _ = _classify(str(chip), models=models_dir)
    assert code == 0
    if not plain["faces"]:
        assert "--face-crop" in plain["hint"]  # says what to do instead of a silent "faces": []
    code, (record,), _ = _classify("--face-crop", str(chip), models=models_dir)
    assert code == 0
    (face,) = record["faces"]
    assert face["face_crop"] is True
    assert face["minor"] is True or {"age", "gender"} <= set(face["attributes"]), face
    x1, _, x2, _ = face["box"]
    assert (x2 - x1) == pytest.approx(160, abs=1) and x1 == pytest.approx(20, abs=1)  # the centre 80 % of 200 px


def test_classify_face_crop_on_utkface_chips_returns_one_face_each(
    utkface_dir: Path,
    models_dir: Path,  # noqa: F811
) -> None:
    chips = sorted(utkface_dir.glob("*.chip.jpg"))[::2000][:5]
    code, records, _ = _classify("--face-crop", *(str(c) for c in chips), models=models_dir)
    assert code == 0 and len(records) == len(chips)
    assert all(len(r["faces"]) == 1 for r in records)
    adults = [(c, r["faces"][0]) for c, r in zip(chips, records, strict=True) if int(c.name.split("_")[0]) >= 25]
    for chip, face in adults:
        if not face.get("minor"):
            truth = ("male", "female")[int(chip.name.split("_")[1])]
            assert face["attributes"]["gender"]["label"] in (truth, "unknown"), (chip.name, face)


def test_classify_gates_a_minor_and_a_low_confidence_head_like_the_daemon(
    tmp_path: Path,
    models_dir: Path,  # noqa: F811
) -> None:
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut_bgr())
    strict = tmp_path / "strict.toml"  # no one is a minor; gender must be near certain to be published
    strict.write_text("[tracking]\nmin_age_years = 0\n[tracking.min_confidence]\ngender = 1.0\n")
    code, (record,), _ = _classify("-c", str(strict), str(photo), models=models_dir)
    assert code == 0
    (face,) = record["faces"]
    assert "minor" not in face and face["attributes"]["gender"]["label"] == "unknown"
    assert "min_confidence.gender" in face["not_published"]["gender"]
    gating = tmp_path / "gating.toml"  # everyone under 100 is a minor: a count only, no attributes at all
    gating.write_text("[tracking]\nmin_age_years = 100\n")
    code, (record,), _ = _classify("-c", str(gating), str(photo), models=models_dir)
    (face,) = record["faces"]
    assert face["minor"] is True and "attributes" not in face and "min_age_years" in face["not_published"]["attributes"]


def test_source_override_keeps_a_configured_folders_sequence_setting(tmp_path: Path) -> None:
    from edge_agent.config import parse_config
    from edge_agent.daemon.overrides import with_source

    other = tmp_path / "other"
    other.mkdir()
    cfg = parse_config(
        '[[cameras]]\nid = "cam0"\n[cameras.source]\ntype = "folder"\npath = "x"\nsequence = true\nfps = 5\n'
    )
    src = with_source(cfg, str(other)).cameras[0].source
    assert src.type == "folder" and src.path == other and src.sequence is True and src.fps == 5
    assert with_source(parse_config(""), str(other)).cameras[0].source.sequence is False  # photos by default


@pytest.mark.slow
def test_identical_photos_are_still_separate_scenes(tmp_path: Path, models_dir: Path) -> None:  # noqa: F811
    """Burst shots of one scene: no motion between them, yet each photo is scanned and is its own visit."""
    folder = tmp_path / "burst"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"shot_{i}.jpg"), astronaut_bgr())
    ends = _ends(_run_print(_config(tmp_path, str(folder)), models_dir, tmp_path))
    assert len(ends) == 3 and len({e["track_id"] for e in ends}) == 3, ends
