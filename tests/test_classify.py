"""The packaged int8 attribute model through the agent's own crop + classifier path (real model, real faces)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.classify import PACKAGED_MODEL, AttributeClassifier, AttributeModel
from edge_agent.classify.preprocess import crop_box, crop_face
from edge_agent.modelmeta import CropSpec, MetadataError, load_metadata
from edge_agent.records import Box, Detection
from edge_agent.runtime import ModelLoadError
from tests.fixtures.media import astronaut_bgr

ASTRONAUT_FACE = Box(176.0, 74.7, 277.4, 176.2)  # BlazeFace's box on skimage's astronaut


def _det(box: Box) -> Detection:
    return Detection(box, 0.9, np.zeros((6, 2), np.float32))


def test_packaged_model_metadata_describes_the_file_and_its_heads() -> None:
    meta = load_metadata(PACKAGED_MODEL)  # raises if the sha256 does not match the bytes
    assert meta.quantization == "int8"
    assert meta.labels["age"][0] == "0-2" and meta.labels["age"][-1] == "70+"
    assert meta.labels["gender"] == ("male", "female")
    assert len(meta.age_group_edges) == len(meta.labels["age"])
    assert PACKAGED_MODEL.stat().st_size <= 4_000_000


def test_crop_is_a_square_around_the_box_centre_grown_by_the_margin() -> None:
    r = crop_box(Box(100, 100, 140, 160), CropSpec(0.25, True, "none"))
    assert (r.width, r.height) == (90.0, 90.0) and r.center == (120.0, 130.0)


def test_crop_leaving_the_frame_replicates_edges_instead_of_failing() -> None:
    img = np.full((50, 50, 3), 200, np.uint8)
    crop = crop_face(img, Box(-20, -20, 20, 20), CropSpec(0.2, True, "none"), 64)
    assert crop.shape == (64, 64, 3) and int(crop.min()) == 200


def test_several_faces_share_one_interpreter_and_give_probabilities() -> None:
    clf = AttributeClassifier(None)
    interp = clf.model.interp
    img = astronaut_bgr()
    out = clf.classify(img, [_det(ASTRONAUT_FACE)] * 3)
    views = clf.views_per_face  # with test-time flip each face is run twice: itself and its mirror
    assert clf.model.interp is interp and clf.model.invocations == 3 * views
    assert out[0] == out[1] == out[2]
    for head in (out[0].age, out[0].gender, out[0].race):
        assert head is not None and abs(sum(head.probs) - 1.0) < 1e-6
    assert out[0].race.top[0] == "white"  # Eileen Collins; the model is confident here (p ≈ 0.99)
    assert 5.0 < (out[0].age_years or 0) < 90.0


def test_a_disabled_head_is_never_read_from_the_model() -> None:
    clf = AttributeClassifier(None, enabled=("age", "gender"))
    out = clf.classify(astronaut_bgr(), [_det(ASTRONAUT_FACE)])
    assert out[0].race is None and clf.model.heads_read["race"] == 0
    assert clf.model.heads_read["gender"] == clf.views_per_face  # once per view of the face


def test_no_enabled_heads_means_no_inference_at_all() -> None:
    clf = AttributeClassifier(None, enabled=())
    assert clf.classify(astronaut_bgr(), [_det(ASTRONAUT_FACE)]) == [clf.classify_crop(np.zeros((64, 64, 3), np.uint8))]
    assert clf.model.invocations == 0


def test_model_whose_bytes_do_not_match_its_metadata_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "m.tflite"
    data = bytearray(PACKAGED_MODEL.read_bytes())
    data[-1] ^= 0xFF
    bad.write_bytes(bytes(data))
    shutil.copy(PACKAGED_MODEL.with_suffix(".json"), tmp_path / "m.json")
    with pytest.raises(MetadataError, match="describes sha256"):
        AttributeModel(bad)


def test_metadata_naming_a_head_the_model_lacks_is_refused(tmp_path: Path) -> None:
    from edge_agent.modelmeta import write_metadata

    m = tmp_path / "m.tflite"
    shutil.copy(PACKAGED_MODEL, m)
    raw = json.loads(PACKAGED_MODEL.with_suffix(".json").read_text())
    raw["heads"]["race"]["labels"] = ["a", "b", "c"]  # 3 labels for a 5-way output
    write_metadata(m, raw)
    with pytest.raises(MetadataError, match="has 5 outputs but metadata lists 3"):
        AttributeModel(m)


def test_a_file_that_is_not_tflite_is_a_one_line_error(tmp_path: Path) -> None:
    m = tmp_path / "m.tflite"
    m.write_text("hello")
    shutil.copy(PACKAGED_MODEL.with_suffix(".json"), tmp_path / "m.json")
    with pytest.raises((ModelLoadError, MetadataError)) as exc:
        AttributeModel(m)
    assert "\n" not in str(exc.value)


def test_held_out_faces_found_by_the_detector_are_classified_accurately(utkface_dir: Path) -> None:
    """Golden test on the real pipeline: detector crops of held-out UTKFace faces, at several sizes in a frame."""
    from conversion.data import content_sha256, read_utkface_dir, split_of
    from edge_agent.detect import DetectorConfig, create_detector

    det = create_detector(DetectorConfig())
    clf = AttributeClassifier(None)
    rng = np.random.default_rng(7)
    samples = read_utkface_dir(utkface_dir).samples
    test = [
        s
        for s in (samples[i] for i in rng.choice(len(samples), 1200, replace=False))
        if split_of(content_sha256(s.path)) == "test"
    ][:120]
    g = r = n = 0
    err = 0.0
    for s in test:
        side = int(rng.integers(100, 200))
        chip = cv2.resize(cv2.imread(str(s.path)), (side, side), interpolation=cv2.INTER_AREA)
        frame = np.full((480, 640, 3), 110, np.uint8)
        frame[140 : 140 + side, 200 : 200 + side] = chip
        dets = det.detect(frame)
        if not dets:
            continue
        a = clf.classify(frame, dets[:1])[0]
        n += 1
        g += a.gender.labels.index(a.gender.top[0]) == s.gender
        r += a.race.labels.index(a.race.top[0]) == s.race
        err += abs((a.age_years or 0) - s.age)
    assert n >= 110
    assert g / n >= 0.85 and r / n >= 0.74 and err / n <= 7.0  # measured ~0.90 / 0.81 / 5.0; tolerance for n≈120
