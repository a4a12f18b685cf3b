"""Per-head temperatures and the test-time-flip option come from the model's metadata, and the agent applies them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_agent.classify.classifier import AttributeClassifier, calibrated
from edge_agent.classify.model import PACKAGED_MODEL
from edge_agent.classify.preprocess import crop_face
from edge_agent.modelmeta import MetadataError, load_metadata
from edge_agent.records import Box
from tests.fixtures.media import astronaut_bgr


def _model_copy(tmp_path: Path, **edits: object) -> Path:
    dst = tmp_path / "m.tflite"
    shutil.copyfile(PACKAGED_MODEL, dst)
    raw = json.loads(PACKAGED_MODEL.with_suffix(".json").read_text())
    for key, value in edits.items():
        if key == "flip":
            raw.setdefault("inference", {})["flip"] = value
        else:
            raw["heads"][key]["temperature"] = value
    dst.with_suffix(".json").write_text(json.dumps(raw))
    return dst


def _face() -> np.ndarray:
    meta = load_metadata(PACKAGED_MODEL)
    return crop_face(astronaut_bgr(), Box(180.0, 60.0, 300.0, 200.0), meta.crop, meta.preprocess.size)


def test_metadata_temperature_is_applied_to_the_head(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    base = _model_copy(tmp_path / "a", gender=1.0)
    warm = _model_copy(tmp_path, gender=2.5)
    crop = _face()
    plain = AttributeClassifier(base, enabled=("gender", "age")).classify_crop(crop)
    hot = AttributeClassifier(warm, enabled=("gender", "age")).classify_crop(crop)
    assert plain.gender is not None and hot.gender is not None
    expected = calibrated(np.array(plain.gender.probs), 2.5)
    assert np.allclose(hot.gender.probs, expected, atol=1e-6)
    assert max(hot.gender.probs) < max(plain.gender.probs)  # softer, as the fitted temperature says
    assert np.argmax(hot.gender.probs) == np.argmax(plain.gender.probs)
    assert hot.age == plain.age  # only the head with a temperature changes


@pytest.mark.parametrize("bad", [0, -1.0, "2", True, 100.0])
def test_a_bad_temperature_is_refused_in_one_line(tmp_path: Path, bad: object) -> None:
    with pytest.raises(MetadataError, match="temperature"):
        load_metadata(_model_copy(tmp_path, gender=bad))


def test_flip_option_averages_the_face_and_its_mirror(tmp_path: Path) -> None:
    crop = _face()
    (tmp_path / "p").mkdir()
    flip = AttributeClassifier(_model_copy(tmp_path, flip=True, gender=1.0), enabled=("gender",))
    plain = AttributeClassifier(_model_copy(tmp_path / "p", flip=False, gender=1.0), enabled=("gender",))
    a = np.array(plain.classify_crop(crop).gender.probs)
    b = np.array(plain.classify_crop(np.ascontiguousarray(crop[:, ::-1])).gender.probs)
    both = np.array(flip.classify_crop(crop).gender.probs)
    assert np.allclose(both, calibrated((a + b) / 2, 1.0), atol=0.02)
    assert flip.model.invocations == 2 and plain.model.invocations == 2  # the mirror costs one more inference


def test_mirrored_reverses_the_width_axis_of_an_image_and_of_a_batch() -> None:
    from edge_agent.classify.model import mirrored, views_mean

    x = np.arange(2 * 3 * 4 * 3, dtype=np.float32).reshape(2, 3, 4, 3)  # N, H, W, C
    for arr in (x, x[0]):  # a batch and one image (H, W, C)
        m = mirrored(arr)
        assert m.shape == arr.shape and m.flags.c_contiguous
        w = arr.shape[-2]
        for j in range(w):
            assert np.array_equal(m[..., j, :], arr[..., w - 1 - j, :])
    seen: list[np.ndarray] = []

    def predict(v: np.ndarray) -> dict[str, np.ndarray]:
        seen.append(v)
        return {"left": v[..., 0, 0]}  # the first column only, so face and mirror differ

    assert np.array_equal(views_mean(predict, x, flip=False)["left"], x[..., 0, 0]) and len(seen) == 1
    both = views_mean(predict, x, flip=True)["left"]
    assert np.array_equal(both, (x[..., 0, 0] + x[..., -1, 0]) / 2.0) and len(seen) == 3
