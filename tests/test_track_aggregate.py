"""Per-track aggregation: one stable answer per visit, `unknown` thresholds, children gating, disabled heads."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.analytics.synthetic import head
from edge_agent.records import Attributes, HeadResult, Pose
from edge_agent.track.aggregate import AttributeAccumulator, sample_weight
from edge_agent.track.config import TrackerConfig
from edge_agent.track.events import UNKNOWN, HeadSpec

AGE = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+")
EDGES = (0, 3, 10, 20, 30, 40, 50, 60, 70)
GENDER = ("male", "female")
RACE = ("white", "black", "asian", "indian", "other")
SPEC = HeadSpec(labels={"age": AGE, "gender": GENDER, "race": RACE}, age_group_edges=EDGES, age_years=True)


def acc(spec: HeadSpec = SPEC, **kw) -> AttributeAccumulator:
    return AttributeAccumulator(spec, TrackerConfig(**kw))


def noisy_attrs(rng: np.random.Generator, gender_p: float, age_top: int = 4) -> Attributes:
    g = float(np.clip(gender_p + rng.normal(0, 0.25), 0.01, 0.99))
    return Attributes(
        age=head(AGE, age_top, 0.5),
        age_years=35.0 + rng.normal(0, 5),
        gender=HeadResult(GENDER, (1 - g, g)),
        race=head(RACE, 2, 0.7),
    )


def test_noisy_frames_give_one_stable_answer_that_does_not_flip() -> None:
    rng = np.random.default_rng(1)
    a = acc()
    labels = []
    flips_per_frame = 0
    for i in range(60):
        attrs = noisy_attrs(rng, gender_p=0.7)
        flips_per_frame += attrs.gender.top[0] != "female"
        a.add(attrs, face_px=120, score=0.9, pose=Pose(0, 0))
        if i >= 10:
            labels.append(a.estimate().gender.label)
    assert flips_per_frame >= 5  # single frames do disagree ...
    assert set(labels) == {"female"}  # ... the track's answer does not
    est = a.estimate()
    assert est.age.label == "30-39" and est.race.label == "asian"
    assert 30 < est.age_years < 40
    assert est.gender.probs == ()  # the distribution is only built for the end record
    assert sum(p for _, p in a.estimate(detail=True).gender.probs) == pytest.approx(1.0, abs=1e-3)


def test_one_outlier_frame_does_not_veto_the_answer_as_a_product_would() -> None:
    a = acc()
    for _ in range(5):
        a.add(Attributes(gender=HeadResult(GENDER, (0.1, 0.9))), 120, 0.9, None)
    a.add(Attributes(gender=HeadResult(GENDER, (0.999, 0.001))), 120, 0.9, None)
    assert a.estimate().gender.label == "female"


def test_low_quality_samples_weigh_less() -> None:
    assert sample_weight(0.9, 200, None, 100) == pytest.approx(0.9)
    assert sample_weight(0.9, 50, None, 100) == pytest.approx(0.45)
    assert sample_weight(0.9, 100, Pose(60, 0), 100) == pytest.approx(0.45)
    assert sample_weight(0.9, 100, Pose(90, 0), 100) == pytest.approx(0.9 * 0.25)
    a = acc()
    for _ in range(3):  # big frontal faces say female
        a.add(Attributes(gender=HeadResult(GENDER, (0.2, 0.8))), 120, 0.95, Pose(0, 0))
    for _ in range(4):  # small profile faces say male
        a.add(Attributes(gender=HeadResult(GENDER, (0.8, 0.2))), 45, 0.6, Pose(70, 0))
    assert a.estimate().gender.label == "female"


def test_below_min_confidence_the_head_reports_unknown_with_the_reason() -> None:
    a = acc(min_confidence={"gender": 0.75})
    a.add(Attributes(gender=HeadResult(GENDER, (0.35, 0.65))), 120, 0.9, None)
    g = a.estimate().gender
    assert g.label == UNKNOWN and g.reason == "low_confidence" and g.p == pytest.approx(0.65)
    a.add(Attributes(gender=HeadResult(GENDER, (0.05, 0.95))), 120, 0.9, None)
    assert a.estimate().gender.label == "female"


def test_faces_below_min_face_size_never_count_and_give_unknown() -> None:
    a = acc(min_face_px=60)
    for _ in range(10):
        a.add(Attributes(age=head(AGE, 4, 0.9), age_years=33.0, gender=head(GENDER, 1, 0.99)), 40, 0.9, None)
    est = a.estimate()
    assert est.gender.label == UNKNOWN and est.gender.reason == "small_face" and est.gender.p is None
    assert est.age_years is None and est.minor is None
    a.add(Attributes(age=head(AGE, 4, 0.9), age_years=33.0, gender=head(GENDER, 0, 0.99)), 80, 0.9, None)
    assert a.estimate().gender.label == "male"


def test_a_track_with_no_attributes_at_all_is_unknown_no_samples() -> None:
    a = acc()
    a.add(None, 120, 0.9, None)
    assert a.estimate().age.reason == "no_samples"


def test_a_child_gets_no_attributes_only_the_minor_flag() -> None:
    a = acc(min_age_years=18)
    for _ in range(5):
        a.add(
            Attributes(age=head(AGE, 1, 0.7), age_years=6.0, gender=head(GENDER, 1, 0.9), race=head(RACE, 0, 0.9)),
            120,
            0.9,
            None,
        )
    est = a.estimate()
    assert est.minor is True
    assert est.age is None and est.gender is None and est.race is None and est.age_years is None


def test_minor_by_probability_mass_even_when_the_top_group_is_adult() -> None:
    # 0.35 on 20-29 is the top class, but 0.6 sits on under-18 groups: treated as a minor.
    probs = (0.0, 0.3, 0.3, 0.35, 0.05, 0.0, 0.0, 0.0, 0.0)
    a = acc(min_age_years=18, minor_probability=0.5)
    a.add(Attributes(age=HeadResult(AGE, probs), gender=head(GENDER, 0, 0.9)), 120, 0.9, None)
    assert a.estimate().minor is True


def test_minor_when_the_top_group_is_under_age_even_below_the_mass_threshold() -> None:
    probs = (0.0, 0.0, 0.4, 0.3, 0.3, 0.0, 0.0, 0.0, 0.0)
    a = acc(min_age_years=18, minor_probability=0.5)
    a.add(Attributes(age=HeadResult(AGE, probs)), 120, 0.9, None)
    assert a.estimate().minor is True


def test_an_adult_is_reported_with_minor_false() -> None:
    a = acc(min_age_years=18)
    a.add(Attributes(age=head(AGE, 4, 0.8), gender=head(GENDER, 0, 0.9)), 120, 0.9, None)
    est = a.estimate()
    assert est.minor is False and est.age.label == "30-39" and est.gender.label == "male"


def test_gating_uses_the_edges_from_the_metadata_not_a_hard_coded_list() -> None:
    labels = ("kid", "teen", "adult", "senior")
    spec = HeadSpec(labels={"age": labels}, age_group_edges=(0, 13, 25, 65), age_years=False)
    a = AttributeAccumulator(spec, TrackerConfig(min_age_years=21))
    a.add(Attributes(age=HeadResult(labels, (0.0, 0.8, 0.2, 0.0))), 120, 0.9, None)
    assert a.estimate().minor is True
    b = AttributeAccumulator(spec, TrackerConfig(min_age_years=21))
    b.add(Attributes(age=HeadResult(labels, (0.0, 0.1, 0.8, 0.1))), 120, 0.9, None)
    assert b.estimate().minor is False and b.estimate().age.label == "adult"


def test_gating_off_reports_children_like_everyone_else() -> None:
    a = acc(min_age_years=0)
    a.add(Attributes(age=head(AGE, 1, 0.9), gender=head(GENDER, 1, 0.9)), 120, 0.9, None)
    est = a.estimate()
    assert est.minor is None and est.age.label == "3-9"


def test_a_disabled_head_is_ignored_even_if_a_result_arrives() -> None:
    spec = HeadSpec(labels={"age": AGE, "gender": GENDER}, age_group_edges=EDGES, age_years=True)
    a = AttributeAccumulator(spec, TrackerConfig())
    a.add(Attributes(age=head(AGE, 4, 0.8), gender=head(GENDER, 0, 0.9), race=head(RACE, 1, 0.9)), 120, 0.9, None)
    est = a.estimate()
    assert est.race is None and "race" not in est.heads()


def test_malformed_head_results_are_skipped_and_counted() -> None:
    a = acc()
    a.add(Attributes(gender=HeadResult(("a", "b"), (0.5, 0.5))), 120, 0.9, None)
    a.add(Attributes(gender=HeadResult(GENDER, (float("nan"), 0.5))), 120, 0.9, None)
    assert a.rejected == 2
    assert a.estimate().gender.label == UNKNOWN


def test_head_spec_comes_from_the_model_metadata_and_the_enabled_heads() -> None:
    from edge_agent.modelmeta import SCHEMA_ID, parse_metadata

    raw = {
        "schema": SCHEMA_ID, "name": "m", "version": "1", "sha256": "0" * 64, "quantization": "int8",
        "input": {"size": 96, "color": "RGB", "normalization": {"mean": 127.5, "std": 127.5}},
        "crop": {"margin": 0.2},
        "heads": {"age": {"labels": list(AGE), "group_min_years": list(EDGES)}, "gender": {"labels": list(GENDER)},
                  "race": {"labels": list(RACE)}},
    }  # fmt: skip
    meta = parse_metadata(raw)
    spec = HeadSpec.from_metadata(meta, ["age", "gender"])
    assert spec.labels == {"age": AGE, "gender": GENDER} and spec.age_group_edges == EDGES and spec.age_years
    no_age = HeadSpec.from_metadata(meta, ["gender", "race"])
    assert no_age.age_group_edges == () and not no_age.age_years and no_age.minor_mask(18) is None
