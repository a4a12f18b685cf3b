"""The still-image reader: a decompression bomb is refused from its header in every path, with peak RSS measured.

The bomb is a real 30000x30000 PNG of ~110 KB (1-bit, zlib-compressed zeros): 900 Mpx, which OpenCV would
expand to 900 MB (grey) or 2.7 GB (BGR). Each command runs as a subprocess under a small wrapper that reports
the child's peak RSS (`getrusage(RUSAGE_CHILDREN)` in a fresh parent), compared with the same command on a
normal photo: refusing the bomb must cost no more memory than reading a normal image.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent import imageio
from edge_agent.capture.base import BadFrame, create_source
from edge_agent.capture.config import FolderSourceConfig
from tests.fixtures.media import astronaut_bgr
from tests.test_e2e import NO_ATTRIBUTES, agent_env, models_dir  # noqa: F401

EXE = [sys.executable, "-m", "edge_agent"]
RSS_WRAPPER = (
    "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
    "sys.stdout.write(p.stderr); print('EXIT', p.returncode);"
    "print('RSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def write_png_bomb(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A valid 1-bit greyscale PNG of width x height whose pixels are all zero (compresses ~1000:1)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row * 1000) for _ in range(height // 1000)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_png_bomb(tmp_path_factory.mktemp("bomb") / "bomb.png")


def test_the_bomb_is_a_real_png_under_one_megabyte(bomb: Path) -> None:
    assert bomb.stat().st_size < 1_000_000
    header = imageio.probe(bomb.read_bytes(), bomb)
    assert (header.width, header.height, header.format) == (30000, 30000, "PNG")


def test_header_check_refuses_the_bomb_and_names_the_file_and_size(bomb: Path) -> None:
    with pytest.raises(imageio.ImageSkip) as err:
        imageio.decode(bomb)
    assert err.value.reason == "too_many_pixels"
    assert str(bomb) in str(err.value) and "30000x30000" in str(err.value) and "\n" not in str(err.value)


def test_the_limit_is_configurable_and_a_normal_photo_passes(tmp_path: Path) -> None:
    photo = tmp_path / "face.jpg"
    cv2.imwrite(str(photo), astronaut_bgr())
    assert imageio.read_bgr(photo).shape == (512, 512, 3)
    with pytest.raises(imageio.ImageSkip, match="too_many_pixels"):
        imageio.decode(photo, imageio.ImageLimits(max_pixels=512 * 511))


@pytest.mark.parametrize(
    "name, data, reason",
    [
        ("empty.jpg", b"", "empty_file"),
        ("text.jpg", b"not an image at all", "not_an_image"),
        ("truncated.png", None, "undecodable"),
    ],
)
def test_every_unreadable_image_has_a_reason_and_one_line(
    tmp_path: Path, name: str, data: bytes | None, reason: str
) -> None:
    path = tmp_path / name
    if data is None:  # a valid header whose pixel data is cut off
        _, buf = cv2.imencode(".png", astronaut_bgr())
        data = buf.tobytes()[:400]
    path.write_bytes(data)
    with pytest.raises(imageio.ImageSkip) as err:
        imageio.decode(path)
    assert err.value.reason == reason and name in str(err.value) and "\n" not in str(err.value)


def test_the_folder_source_skips_the_bomb_before_decoding(tmp_path: Path, bomb: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a_bomb.png").write_bytes(bomb.read_bytes())
    cv2.imwrite(str(folder / "b_face.jpg"), astronaut_bgr())
    src = create_source(FolderSourceConfig(path=folder))
    src.open()
    assert src.grab()
    with pytest.raises(BadFrame) as err:
        src.retrieve()
    assert err.value.reason == "too_many_pixels" and err.value.item == "a_bomb.png"
    assert src.grab() and isinstance(src.retrieve(), np.ndarray)
    src.close()


def _peak_rss_kb(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, int, str]:
    res = subprocess.run(
        [sys.executable, "-c", RSS_WRAPPER, *EXE, *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    lines = res.stdout.splitlines()
    rss = int(next(ln for ln in lines if ln.startswith("RSS_KB")).split()[1])
    code = int(next(ln for ln in lines if ln.startswith("EXIT")).split()[1])
    return code, rss, res.stdout


@pytest.mark.slow
@pytest.mark.parametrize("command", ["classify", "annotate", "run"])
def test_refusing_the_bomb_costs_no_more_memory_than_a_normal_photo(
    tmp_path: Path,
    bomb: Path,
    models_dir: Path,  # noqa: F811
    command: str,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[agent]\nstate_dir = "{tmp_path / "state"}"\n[mqtt]\nport = 1\n{NO_ATTRIBUTES}')
    env = agent_env(models_dir)
    peaks = {}
    for label in ("photo", "bomb"):
        folder = tmp_path / label
        folder.mkdir()
        if label == "bomb":
            (folder / "bomb.png").write_bytes(bomb.read_bytes())
        cv2.imwrite(str(folder / "face.jpg"), astronaut_bgr())  # one usable image, so every command succeeds
        args = {
            "classify": ["classify", "-c", str(config), str(folder)],
            "annotate": ["annotate", "-c", str(config), str(folder), "--out", str(tmp_path / f"{label}_out")],
            "run": ["run", "-c", str(config), "--source", str(folder), "--duration", "20"],
        }[command]
        code, peaks[label], out = _peak_rss_kb(args, env, tmp_path)
        assert code == 0, out[-2000:]
        if label == "bomb":
            assert "bomb.png" in out and "too_many_pixels" in out and "30000x30000" in out, out[-2000:]
            assert "Traceback" not in out
    print(
        f"{command}: peak RSS {peaks['photo'] / 1024:.0f} MB with a photo, {peaks['bomb'] / 1024:.0f} MB with the bomb"
    )
    # Decoding the bomb would add at least 900 MB; refusing it from the header adds nothing measurable.
    assert peaks["bomb"] < peaks["photo"] + 50 * 1024, peaks


def test_classify_reports_the_bomb_as_a_json_error_record(tmp_path: Path, bomb: Path, models_dir: Path) -> None:  # noqa: F811
    config = tmp_path / "config.toml"
    config.write_text(NO_ATTRIBUTES)
    res = subprocess.run(
        [*EXE, "classify", "-c", str(config), str(bomb)],
        env=agent_env(models_dir),
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 1  # nothing usable
    (record,) = [json.loads(line) for line in res.stdout.splitlines()]
    assert record["file"] == str(bomb) and record["error"].startswith("too_many_pixels")
    warnings = [ln for ln in res.stderr.splitlines() if "bomb.png" in ln and "WARNING" in ln]
    assert len(warnings) == 1, res.stderr
