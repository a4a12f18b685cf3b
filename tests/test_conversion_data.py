"""Dataset reading for the toolchain: UTKFace names (every malformed form), CSV manifests, the duplicate-aware split."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conversion.data import (
    MISSING,
    DataError,
    class_weights,
    content_sha256,
    load_arrays,
    parse_utkface_name,
    read_dataset,
    read_manifest,
    read_utkface_dir,
    split_of,
)
from conversion.labels import AGE_GROUPS, age_group_index


def test_utkface_name_parses_age_gender_race_and_age_group() -> None:
    s = parse_utkface_name("26_1_2_20170116174525125.jpg.chip.jpg")
    assert not isinstance(s, str)
    assert (s.age, s.gender, s.race) == (26.0, 1, 2)
    assert AGE_GROUPS[s.age_group] == "20-29"


@pytest.mark.parametrize(
    "name",
    [
        "39_1_20170116174525125.jpg.chip.jpg",  # race field missing (3 such files in UTKFace)
        "61_1_20170109150557335.jpg.chip.jpg",
        "24_0_1_20170116220224657 .jpg.chip.jpg",  # a space before .jpg
        "55_0_0_20170116232725357jpg.chip.jpg",  # no dot before jpg
        "26_2_0_20170116174525125.jpg.chip.jpg",  # gender out of range
        "26_0_7_20170116174525125.jpg.chip.jpg",  # race out of range
        "abc_0_0_20170116174525125.jpg.chip.jpg",
        "notes.txt",
        "",
    ],
)
def test_malformed_utkface_names_are_reasons_not_crashes(name: str) -> None:
    assert isinstance(parse_utkface_name(name), str)


def test_age_group_boundaries_follow_fairface_bins() -> None:
    assert [AGE_GROUPS[age_group_index(a)] for a in (0, 2, 3, 9, 10, 19, 20, 69, 70, 116)] == [
        "0-2",
        "0-2",
        "3-9",
        "3-9",
        "10-19",
        "10-19",
        "20-29",
        "60-69",
        "70+",
        "70+",
    ]


def _jpeg(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
    cv2.imwrite(str(path), img)
    return path


def test_folder_reader_skips_and_counts_malformed_names(tmp_path: Path) -> None:
    _jpeg(tmp_path / "30_0_0_20170101000000001.jpg.chip.jpg", 1)
    _jpeg(tmp_path / "39_1_20170116174525125.jpg.chip.jpg", 2)
    _jpeg(tmp_path / "24_0_1_20170116220224657 .jpg.chip.jpg", 3)
    ds = read_utkface_dir(tmp_path)
    assert len(ds.samples) == 1
    assert sum(ds.skipped.values()) == 2
    assert "skipped 2 files" in ds.report_skipped()


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_dataset(tmp_path / "nope")


def test_corrupt_and_empty_images_are_skipped_and_counted(tmp_path: Path) -> None:
    _jpeg(tmp_path / "30_0_0_20170101000000001.jpg.chip.jpg", 1)
    (tmp_path / "31_0_0_20170101000000002.jpg.chip.jpg").write_bytes(b"")
    (tmp_path / "32_0_0_20170101000000003.jpg.chip.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    arr = load_arrays(read_utkface_dir(tmp_path), 32, workers=1)
    assert len(arr) == 1
    assert arr.skipped["unreadable image"] == 2


def test_csv_manifest_reads_years_groups_and_fairface_labels(tmp_path: Path) -> None:
    for i in range(4):
        _jpeg(tmp_path / f"img{i}.jpg", i)
    (tmp_path / "m.csv").write_text(
        "file,age,gender,race\n"
        "img0.jpg,34,female,white\n"
        "img1.jpg,20-29,Male,East Asian\n"  # FairFace spelling and a group instead of years
        "img2.jpg,,1,Latino_Hispanic\n"  # missing age is masked, not dropped
        "img3.jpg,7,robot,white\n"  # bad label: skipped and counted
        "missing.jpg,30,male,black\n"  # missing file: skipped and counted
    )
    ds = read_manifest(tmp_path / "m.csv")
    assert [(s.age, AGE_GROUPS[s.age_group] if s.age_group >= 0 else None, s.gender, s.race) for s in ds.samples] == [
        (34.0, "30-39", 1, 0),
        (MISSING, "20-29", 0, 2),
        (MISSING, None, 1, 4),
    ]
    assert ds.skipped["missing file"] == 1
    assert sum(ds.skipped.values()) == 2


def test_manifest_without_a_path_column_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("image,age\nx.jpg,3\n")
    with pytest.raises(DataError, match="'path' or 'file'"):
        read_manifest(tmp_path / "m.csv")


def test_byte_identical_files_always_share_a_split(tmp_path: Path) -> None:
    # Same bytes under different names and labels (as in UTKFace's 327 duplicate groups) → same side.
    src = _jpeg(tmp_path / "a.jpg", 7).read_bytes()
    names = [f"{20 + i}_{i % 2}_{i % 5}_2017010100000{i}.jpg.chip.jpg" for i in range(6)]
    for n in names:
        (tmp_path / n).write_bytes(src)
    sides = {split_of(content_sha256(tmp_path / n)) for n in names}
    assert len(sides) == 1


def test_split_is_deterministic_and_roughly_75_10_15() -> None:
    import hashlib

    sides = [split_of(hashlib.sha256(str(i).encode()).hexdigest()) for i in range(20000)]
    frac = {k: sides.count(k) / len(sides) for k in ("train", "val", "test")}
    assert abs(frac["train"] - 0.75) < 0.02 and abs(frac["val"] - 0.10) < 0.02 and abs(frac["test"] - 0.15) < 0.02
    assert sides == [split_of(hashlib.sha256(str(i).encode()).hexdigest()) for i in range(20000)]


def test_class_weights_up_weight_rare_classes_and_ignore_missing() -> None:
    w = class_weights(np.array([0] * 90 + [1] * 10 + [MISSING] * 5), 3)
    assert w[1] > w[0] and w[2] == 0.0


def test_real_utkface_folder_reports_its_five_malformed_names(utkface_dir: Path) -> None:
    ds = read_utkface_dir(utkface_dir)
    assert sum(ds.skipped.values()) == 5
    assert len(ds.samples) == 21392
