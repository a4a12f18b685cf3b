"""Face datasets: UTKFace-style folders and CSV manifests, a duplicate-aware split, and a decoded-image cache."""

from __future__ import annotations

import csv
import hashlib
import logging
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from conversion.labels import AGE_GROUPS, GENDERS, RACE_ALIASES, RACES, age_group_index

log = logging.getLogger(__name__)

MISSING = -1  # label not available for this sample; its loss term is masked out
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# `age_gender_race_date.jpg.chip.jpg`; the date part is free-form digits.
_UTK_RE = re.compile(r"^(\d{1,3})_([01])_([0-4])_(\d+)\.jpg\.chip\.jpg$")


class DataError(ValueError):
    """A dataset path or manifest is unusable; the message is one line and names the problem."""


@dataclass(frozen=True, slots=True)
class Sample:
    path: Path
    age: float  # years, or MISSING
    age_group: int  # index into AGE_GROUPS, or MISSING
    gender: int  # index into GENDERS, or MISSING
    race: int  # index into RACES, or MISSING
    source: str = ""  # dataset name (folder or manifest), for per-source sampling and reports
    tight: bool = False  # a tight face chip with no context (UTKFace): the detector needs it padded


@dataclass
class Dataset:
    samples: list[Sample]
    skipped: Counter[str] = field(default_factory=Counter)

    def report_skipped(self) -> str:
        if not self.skipped:
            return "skipped 0 files"
        parts = ", ".join(f"{n} {reason}" for reason, n in self.skipped.most_common())
        return f"skipped {sum(self.skipped.values())} files: {parts}"


def parse_utkface_name(name: str) -> Sample | str:
    """Parse a UTKFace file name; returns a Sample (path = name) or the reason it is malformed."""
    m = _UTK_RE.match(name)
    if m is None:
        fields = name.split("_")
        if len(fields) < 4:
            return "malformed name (missing field)"
        return "malformed name (bad suffix or field)"
    age, gender, race = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not 0 <= age <= 120:
        return "malformed name (age out of range)"
    return Sample(Path(name), float(age), age_group_index(age), gender, race)


def read_utkface_dir(root: Path) -> Dataset:
    """All images of a UTKFace-style folder; malformed names are skipped and counted, never fatal."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root}")
    ds = Dataset([])
    for p in sorted(root.iterdir()):
        if not p.is_file():
            continue
        parsed = parse_utkface_name(p.name)
        if isinstance(parsed, str):
            ds.skipped[parsed] += 1
            log.debug("skipping %s: %s", p.name, parsed)
            continue
        ds.samples.append(Sample(p, parsed.age, parsed.age_group, parsed.gender, parsed.race, source_name(root), True))
    if not ds.samples:
        raise DataError(f"no labelled images in {root} ({ds.report_skipped()})")
    return ds


def _parse_age(value: str) -> tuple[float, int]:
    value = value.strip()
    if not value:
        return MISSING, MISSING
    if value in AGE_GROUPS:
        return MISSING, AGE_GROUPS.index(value)
    if value == "more than 70":  # FairFace spells the last group this way
        return MISSING, len(AGE_GROUPS) - 1
    years = float(value)
    if not 0 <= years <= 120:
        raise ValueError(f"age {value!r} out of range")
    return years, age_group_index(years)


def _parse_choice(value: str, labels: tuple[str, ...], aliases: dict[str, str] | None = None) -> int:
    v = value.strip().lower()
    if not v:
        return MISSING
    if v.isdigit() and int(v) < len(labels):
        return int(v)
    if aliases:
        v = aliases.get(v, v)
    if v in labels:
        return labels.index(v)
    raise ValueError(f"{value!r} is not one of {', '.join(labels)}")


def read_manifest(csv_path: Path) -> Dataset:
    """A CSV with a `path` (or `file`) column and any of `age` (years or a group label), `gender`, `race`.

    Relative paths are resolved against the CSV's folder. Rows that are malformed or point at missing files
    are skipped and counted. FairFace's own CSV works as-is (race labels are folded onto five groups).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"manifest not found: {csv_path}")
    ds = Dataset([])
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = {c.strip().lower(): c for c in (reader.fieldnames or [])}
        path_col = cols.get("path") or cols.get("file")
        if path_col is None:
            raise DataError(f"manifest {csv_path}: needs a 'path' or 'file' column, has {list(cols)}")
        if not {"age", "gender", "race"} & set(cols):
            raise DataError(f"manifest {csv_path}: needs at least one of the columns age, gender, race")
        for lineno, row in enumerate(reader, start=2):
            try:
                age, group = _parse_age(row.get(cols.get("age", ""), "") or "")
                gender = _parse_choice(row.get(cols.get("gender", ""), "") or "", GENDERS)
                race = _parse_choice(row.get(cols.get("race", ""), "") or "", RACES, RACE_ALIASES)
            except ValueError as exc:
                ds.skipped[f"bad label ({exc})"] += 1
                log.debug("%s:%d skipped: %s", csv_path, lineno, exc)
                continue
            p = Path(row[path_col].strip())
            p = p if p.is_absolute() else csv_path.parent / p
            if not p.is_file():
                ds.skipped["missing file"] += 1
                continue
            ds.samples.append(Sample(p, age, group, gender, race, source_name(csv_path)))
    if not ds.samples:
        raise DataError(f"no usable rows in {csv_path} ({ds.report_skipped()})")
    return ds


def source_name(path: Path) -> str:
    """A short name for a dataset: the folder's name, or a manifest's folder name (`aaf/labels.csv` → `aaf`)."""
    path = Path(path).resolve()
    return path.parent.name if path.is_file() else path.name


def read_sources(paths: list[Path]) -> Dataset:
    """One dataset from several folders and manifests; each sample keeps its source's name."""
    out = Dataset([])
    names: list[str] = []
    for p in paths:
        ds = read_dataset(p)
        name = ds.samples[0].source
        if name in names:  # two sources with the same folder name stay apart in the reports
            name = f"{name}{len(names)}"
            ds.samples = [Sample(s.path, s.age, s.age_group, s.gender, s.race, name, s.tight) for s in ds.samples]
        names.append(name)
        out.samples.extend(ds.samples)
        for reason, n in ds.skipped.items():
            out.skipped[f"{name}: {reason}"] += n
    return out


def read_dataset(path: Path) -> Dataset:
    """A folder (UTKFace naming) or a .csv manifest."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data path not found: {path}")
    if path.is_file() and path.suffix.lower() == ".csv":
        return read_manifest(path)
    if path.is_dir():
        return read_utkface_dir(path)
    raise DataError(f"data path must be a folder of images or a .csv manifest: {path}")


# --- the split -----------------------------------------------------------------------------------------------
# Buckets come from the hash of the file's *bytes*, so byte-identical copies (UTKFace has 327 such groups, some
# with different labels) always land on the same side and cannot leak from train into test.
SPLITS = ("train", "val", "test")
VAL_FROM, TEST_FROM = 75, 85  # bucket < 75 → train (75%), 75..84 → val (10%), >= 85 → test (15%)


def content_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def split_of(sha_hex: str) -> str:
    bucket = int(sha_hex[:8], 16) % 100
    if bucket >= TEST_FROM:
        return "test"
    return "val" if bucket >= VAL_FROM else "train"


# --- decoding -------------------------------------------------------------------------------------------------
def load_chip(path: Path) -> np.ndarray | None:
    """Decode to RGB uint8 at original size; None when the file is not a readable image."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None or img.ndim != 3 or min(img.shape[:2]) < 8:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def decode_rgb(path: Path, size: int) -> np.ndarray | None:
    """Decode an image file to RGB uint8 size×size (squashed square), or None if it is not a readable image."""
    img = load_chip(path)
    return None if img is None else cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


@dataclass
class Arrays:
    """A decoded dataset in memory: images (N,S,S,3) RGB uint8 and label arrays, with the split of each sample."""

    images: np.ndarray
    age: np.ndarray
    age_group: np.ndarray
    gender: np.ndarray
    race: np.ndarray
    split: np.ndarray  # str per sample
    paths: list[str]
    skipped: Counter[str]
    source: np.ndarray | None = None  # str per sample: the dataset it came from
    detected: np.ndarray | None = None  # bool per sample: crop cut from the detector's box (else the fallback box)

    def subset(self, which: str) -> Arrays:
        return self.take(self.split == which)

    def take(self, m: np.ndarray) -> Arrays:
        """The samples selected by a boolean mask or an index array. A contiguous ascending selection (a split of a
        training cache, which is stored in split order) is a view of the images, not a copy."""
        idx = np.flatnonzero(m) if m.dtype == bool else np.asarray(m)
        if len(idx) and idx[0] >= 0 and np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))):
            images = self.images[int(idx[0]) : int(idx[0]) + len(idx)]
        else:
            images = self.images[idx]
        return Arrays(
            images,
            self.age[idx],
            self.age_group[idx],
            self.gender[idx],
            self.race[idx],
            self.split[idx],
            [self.paths[i] for i in idx],
            self.skipped,
            None if self.source is None else self.source[idx],
            None if self.detected is None else self.detected[idx],
        )

    def __len__(self) -> int:
        return int(self.images.shape[0])


def load_arrays(ds: Dataset, size: int, workers: int = 2) -> Arrays:
    """Decode every sample (threads: cv2 releases the GIL); unreadable images are skipped and counted."""

    def work(s: Sample) -> tuple[np.ndarray | None, str]:
        try:
            sha = content_sha256(s.path)
        except OSError:
            return None, ""
        return decode_rgb(s.path, size), sha

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(work, ds.samples))
    skipped = Counter(ds.skipped)
    keep: list[int] = []
    imgs: list[np.ndarray] = []
    shas: list[str] = []
    for i, (img, sha) in enumerate(results):
        if img is None:
            skipped["unreadable image"] += 1
            log.warning("skipping unreadable image %s", ds.samples[i].path)
            continue
        keep.append(i)
        imgs.append(img)
        shas.append(sha)
    if not keep:
        raise DataError(f"no readable images ({sum(skipped.values())} skipped)")
    ss = [ds.samples[i] for i in keep]
    return Arrays(
        images=np.stack(imgs),
        age=np.array([s.age for s in ss], np.float32),
        age_group=np.array([s.age_group for s in ss], np.int32),
        gender=np.array([s.gender for s in ss], np.int32),
        race=np.array([s.race for s in ss], np.int32),
        split=np.array([split_of(h) for h in shas]),
        paths=[str(s.path) for s in ss],
        skipped=skipped,
    )


def class_weights(labels: np.ndarray, n: int, power: float = 0.5) -> np.ndarray:
    """Inverse-frequency^power weights normalised to mean 1 over samples; MISSING labels are ignored."""
    valid = labels[labels >= 0]
    counts = np.bincount(valid, minlength=n).astype(np.float64)
    w = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1)) ** power, 0.0)
    mean = (w[valid]).mean() if valid.size else 1.0
    return (w / mean).astype(np.float32)
