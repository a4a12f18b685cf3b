"""Per-track aggregation: one stable answer per visit, `unknown` thresholds, children gating, disabled heads."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edge_agent.analytics.synthetic import head
from edge_agent.records import Attributes, HeadResult, Pose
from edge_agent.track.aggregate import AttributeAccumulator, _HeadSum, sample_weight
from edge_agent.track.config import TrackerConfig
from edge_agent.track.events import UNKNOWN, AttributeEstimate, HeadEstimate, HeadSpec

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


# --- sample_weight: each factor, its clamps and its floor ---


@pytest.mark.parametrize(
    ("sharpness", "factor"),
    [(None, 1.0), (0.25, 0.5), (0.5, 1.0), (0.75, 1.0), (1.0, 1.0), (0.0, 0.0), (-1.0, 0.0)],
)
def test_sharpness_is_doubled_capped_at_one_and_floored_at_zero(sharpness: float | None, factor: float) -> None:
    # factor = min(1, 2 * max(0, sharpness)): only faces blurrier than the reference (0.5) lose weight
    assert sample_weight(0.9, 100, None, 100, sharpness) == pytest.approx(0.9 * factor)


def test_sharpness_multiplies_the_other_factors() -> None:
    # 0.8 score x 50/100 px x cos 60 deg x 2*0.3
    assert sample_weight(0.8, 50, Pose(60, 0), 100, 0.3) == pytest.approx(0.8 * 0.5 * 0.5 * 0.6)


@pytest.mark.parametrize(("score", "factor"), [(1.5, 1.0), (1.0, 1.0), (0.4, 0.4), (-0.2, 0.0)])
def test_the_detector_score_is_clipped_to_0_1(score: float, factor: float) -> None:
    assert sample_weight(score, 100, None, 100) == pytest.approx(factor)


@pytest.mark.parametrize(
    ("yaw", "factor"),
    [
        (0.0, 1.0),
        (60.0, 0.5),
        (-60.0, 0.5),
        (75.0, 0.258819),  # cos 75 deg, just above the floor
        (80.0, 0.25),  # cos 80 deg = 0.17: floored
        (90.0, 0.25),
        (135.0, 0.25),  # treated as 90 deg (cos 135 deg would be negative)
        (-135.0, 0.25),
        (180.0, 0.25),
    ],
)
def test_frontality_is_cos_yaw_floored_and_beyond_90_degrees_counts_as_90(yaw: float, factor: float) -> None:
    assert sample_weight(1.0, 100, Pose(yaw, 10.0), 100) == pytest.approx(factor, abs=1e-6)


def test_face_size_weight_is_capped_at_full_weight_width() -> None:
    assert sample_weight(1.0, 25, None, 100) == pytest.approx(0.25)
    assert sample_weight(1.0, 100, None, 100) == pytest.approx(1.0)
    assert sample_weight(1.0, 300, None, 100) == pytest.approx(1.0)
    assert sample_weight(1.0, 60, None, 120) == pytest.approx(0.5)


# --- averaging: weights, clipping of dequantized outputs, rounding ---


def gender(probs: tuple[float, ...]) -> Attributes:
    return Attributes(gender=HeadResult(GENDER, probs))


def test_the_mean_is_weighted_by_sample_weight() -> None:
    a = acc()
    a.add(gender((0.2, 0.8)), 100, 1.0, None)  # weight 1
    a.add(gender((0.8, 0.2)), 50, 0.5, None)  # weight 0.5 x 0.5 = 0.25
    female = (1.0 * 0.8 + 0.25 * 0.2) / 1.25  # 0.68
    g = a.estimate(detail=True).gender
    assert g.label == "female" and g.p == pytest.approx(female) and g.reason is None
    assert dict(g.probs) == pytest.approx({"male": 1 - female, "female": female})


@pytest.mark.parametrize(
    ("raw", "clipped"),
    [
        ((-0.01, 1.01), (0.0, 1.0)),  # both ends out
        ((-0.01, 1.0), (0.0, 1.0)),  # only the minimum out, the maximum exactly 1
        ((-0.02, 0.97), (0.0, 0.97)),  # only the minimum out
        ((0.0, 1.01), (0.0, 1.0)),  # only the maximum out, the minimum exactly 0
        ((0.03, 1.02), (0.03, 1.0)),  # only the maximum out
        ((0.0, 1.0), (0.0, 1.0)),  # on the bounds: nothing to clip
        ((0.25, 0.75), (0.25, 0.75)),
    ],
)
def test_dequantized_probabilities_are_clipped_to_0_1(raw: tuple[float, float], clipped: tuple[float, float]) -> None:
    a = acc()
    a.add(gender(raw), 120, 0.9, None)
    g = a.estimate(detail=True).gender
    assert g.probs == (("male", clipped[0]), ("female", clipped[1]))
    assert g.p == clipped[1] and g.label == "female"


def test_clipping_happens_before_averaging() -> None:
    a = acc()
    a.add(gender((-0.01, 1.01)), 120, 0.9, None)
    a.add(gender((0.41, 0.59)), 120, 0.9, None)
    # mean of (0, 1) and (0.41, 0.59); unclipped it would be (0.2, 0.8)
    g = a.estimate(detail=True).gender
    assert dict(g.probs) == pytest.approx({"male": 0.205, "female": 0.795})
    assert g.p == pytest.approx(0.795)


def test_the_running_sum_refuses_a_vector_of_the_wrong_length() -> None:
    s = _HeadSum(GENDER)
    with pytest.raises(ValueError, match="zip"):
        s.add((0.2, 0.3, 0.5), 1.0)
    with pytest.raises(ValueError, match="zip"):
        s.add((-0.1, 0.3, 0.8), 1.0)  # also after clipping
    s.add((0.25, 0.75), 2.0)
    assert s.mean() == [0.25, 0.75] and s.weight == 2.0


def test_a_result_with_the_right_labels_but_the_wrong_length_is_skipped() -> None:
    a = acc()
    a.add(gender((0.2, 0.3, 0.5)), 120, 0.9, None)
    assert a.rejected == 1 and a.samples == 1
    assert a.estimate().gender.reason == "no_samples"


def test_probs_and_p_are_rounded_to_exactly_4_decimals() -> None:
    a = acc()
    a.add(gender((1 / 3, 2 / 3)), 120, 0.9, None)
    g = a.estimate(detail=True).gender
    assert g.probs == (("male", 0.3333), ("female", 0.6667))
    assert g.p == 0.6667 and g.label == "female"
    assert a.estimate().gender.probs == ()  # no distribution without `detail`


def test_p_exactly_at_the_confidence_bar_is_not_unknown() -> None:
    a = acc(min_confidence={"gender": 0.6})
    a.add(gender((0.4, 0.6)), 120, 0.9, None)
    g = a.estimate().gender
    assert g.label == "female" and g.p == 0.6 and g.reason is None


def test_the_bar_is_compared_with_the_rounded_p() -> None:
    a = acc(min_confidence={"gender": 0.6})
    a.add(gender((0.40004, 0.59996)), 120, 0.9, None)  # p rounds to 0.6
    assert a.estimate().gender.label == "female"
    b = acc(min_confidence={"gender": 0.6})
    b.add(gender((0.4001, 0.5999)), 120, 0.9, None)
    g = b.estimate().gender
    assert g.label == UNKNOWN and g.p == 0.5999 and g.reason == "low_confidence"


def test_a_low_confidence_head_still_carries_its_distribution() -> None:
    a = acc(min_confidence={"gender": 0.75})
    a.add(gender((0.35, 0.65)), 120, 0.9, None)
    g = a.estimate(detail=True).gender
    assert g.label == UNKNOWN and g.reason == "low_confidence" and g.p == 0.65
    assert g.probs == (("male", 0.35), ("female", 0.65))
    assert a.estimate().gender.probs == ()


# --- unknown reasons and the counters ---


def test_one_small_face_is_enough_for_small_face_and_none_gives_no_samples() -> None:
    a = acc(min_face_px=60)
    a.add(gender((0.1, 0.9)), 59, 0.9, None)
    g = a.estimate(detail=True).gender
    assert g == HeadEstimate(label=UNKNOWN, p=None, probs=(), reason="small_face")
    assert a.samples == 1 and a.small == 1
    b = acc(min_face_px=60)
    g = b.estimate(detail=True).gender
    assert g == HeadEstimate(label=UNKNOWN, p=None, probs=(), reason="no_samples")
    assert b.samples == 0 and b.small == 0


def test_a_face_exactly_min_face_px_wide_counts() -> None:
    a = acc(min_face_px=60)
    a.add(gender((0.1, 0.9)), 60, 0.9, None)
    assert a.small == 0 and a.estimate().gender.label == "female"


def test_note_small_counts_each_call_and_invalidates_the_cached_estimate() -> None:
    a = acc()
    assert a.estimate().gender.reason == "no_samples"
    a.note_small()
    assert a.small == 1 and a.samples == 0
    assert a.estimate().gender.reason == "small_face"  # not the cached no_samples
    a.note_small()
    assert a.small == 2
    a.add(gender((0.1, 0.9)), 120, 0.9, None)
    assert a.small == 2 and a.estimate().gender.label == "female"


def test_a_frame_without_attributes_is_not_a_sample() -> None:
    a = acc()
    a.add(None, 120, 0.9, None)
    assert a.samples == 0 and a.small == 0


def test_a_zero_weight_sample_is_counted_but_does_not_vote() -> None:
    a = acc()
    a.add(gender((0.9, 0.1)), 120, 0.0, None)  # detector score 0
    assert a.samples == 1 and a.small == 0
    assert a.estimate().gender.reason == "no_samples"
    a.add(gender((0.2, 0.8)), 120, 0.9, None, sharpness=0.0)  # fully blurred
    assert a.estimate().gender.reason == "no_samples"
    a.add(gender((0.2, 0.8)), 120, 0.9, None, sharpness=0.25)
    g = a.estimate().gender
    assert g.label == "female" and g.p == 0.8


def test_sharpness_passed_to_add_weighs_the_sample() -> None:
    a = acc()
    a.add(gender((0.2, 0.8)), 100, 1.0, None, sharpness=0.5)  # weight 1
    a.add(gender((0.8, 0.2)), 100, 1.0, None, sharpness=0.25)  # weight 0.5
    assert a.estimate().gender.p == pytest.approx((0.8 + 0.5 * 0.2) / 1.5)


# --- age_years ---


def test_age_years_is_the_weighted_mean_rounded_to_one_decimal() -> None:
    a = acc()
    a.add(Attributes(age=head(AGE, 4, 0.8), age_years=30.0), 100, 1.0, None)  # weight 1
    a.add(Attributes(age=head(AGE, 4, 0.8), age_years=31.0), 50, 1.0, None)  # weight 0.5
    assert a.estimate().age_years == 30.3  # (30 + 15.5) / 1.5 = 30.33
    a.add(Attributes(age=head(AGE, 4, 0.8), age_years=float("nan")), 100, 1.0, None)  # ignored
    a.add(Attributes(age=head(AGE, 4, 0.8), age_years=None), 100, 1.0, None)  # ignored
    assert a.estimate().age_years == 30.3


def test_age_years_is_not_reported_when_the_spec_has_none() -> None:
    spec = HeadSpec(labels={"age": AGE}, age_group_edges=EDGES, age_years=False)
    a = acc(spec)
    a.add(Attributes(age=head(AGE, 4, 0.8), age_years=33.0), 120, 0.9, None)
    est = a.estimate()
    assert est.age_years is None and est.age.label == "30-39"


# --- estimate: caching and which heads it reports ---


def test_the_estimate_is_cached_per_detail_until_the_next_sample() -> None:
    a = acc()
    a.add(gender((0.2, 0.8)), 120, 0.9, None)
    first = a.estimate()
    assert a.estimate() is first
    detailed = a.estimate(detail=True)
    assert detailed is not first and detailed.gender.probs == (("male", 0.2), ("female", 0.8))
    assert a.estimate() is first and a.estimate(detail=True) is detailed
    a.add(None, 120, 0.9, None)  # nothing offered: the cache stays
    assert a.estimate() is first
    a.add(gender((0.9, 0.1)), 120, 0.9, None)
    second = a.estimate()
    assert second is not first and second.gender.p == pytest.approx(0.55)


def test_the_estimate_reports_every_enabled_head_and_nothing_else() -> None:
    a = acc(min_age_years=0)
    a.add(
        Attributes(age=head(AGE, 5, 0.6), age_years=44.0, gender=head(GENDER, 0, 0.9), race=head(RACE, 3, 0.8)),
        120,
        0.9,
        None,
    )
    est = a.estimate()
    assert est.minor is None and est.age_years == 44.0
    assert {h: e.label for h, e in est.heads().items()} == {"age": "40-49", "gender": "male", "race": "indian"}
    only_gender = acc(HeadSpec(labels={"gender": GENDER}))
    only_gender.add(Attributes(age=head(AGE, 5, 0.6), age_years=44.0, gender=head(GENDER, 0, 0.9)), 120, 0.9, None)
    est = only_gender.estimate()
    assert est.age is None and est.race is None and est.age_years is None and est.minor is None
    assert est.gender.label == "male"


# --- is_minor ---


def test_is_minor_is_none_when_it_cannot_be_told() -> None:
    assert acc(min_age_years=18).is_minor() is None  # no usable sample yet
    off = acc(min_age_years=0)
    off.add(Attributes(age=head(AGE, 1, 0.9)), 120, 0.9, None)
    assert off.is_minor() is None
    no_age = acc(HeadSpec(labels={"gender": GENDER}), min_age_years=18)
    no_age.add(gender((0.2, 0.8)), 120, 0.9, None)
    assert no_age.is_minor() is None


def test_under_age_mass_exactly_at_minor_probability_is_a_minor() -> None:
    # 0.125 + 0.125 + 0.25 = 0.5 exactly on the under-18 groups; the top group (20-29, 0.375) is adult
    probs = (0.125, 0.125, 0.25, 0.375, 0.125, 0.0, 0.0, 0.0, 0.0)
    a = acc(min_age_years=18, minor_probability=0.5)
    a.add(Attributes(age=HeadResult(AGE, probs)), 100, 1.0, None)
    assert a.is_minor() is True and a.estimate() == AttributeEstimate(minor=True)
    b = acc(min_age_years=18, minor_probability=0.51)
    b.add(Attributes(age=HeadResult(AGE, probs)), 100, 1.0, None)
    assert b.is_minor() is False and b.estimate().age.label == "20-29"


def test_age_edges_that_do_not_match_the_labels_raise_instead_of_truncating() -> None:
    spec = HeadSpec(labels={"age": AGE}, age_group_edges=(0, 3, 10))  # 3 edges for 9 labels
    a = acc(spec, min_age_years=18)
    a.add(Attributes(age=head(AGE, 4, 0.8)), 120, 0.9, None)
    with pytest.raises(ValueError, match="zip"):
        a.is_minor()
    with pytest.raises(ValueError, match="zip"):
        a.decision_margin()


# --- decision_margin ---


def test_decision_margin_is_zero_until_every_head_has_a_usable_sample() -> None:
    assert acc().decision_margin() == 0.0
    a = acc(HeadSpec(labels={"gender": GENDER, "race": RACE}))
    a.add(gender((0.1, 0.9)), 120, 0.9, None)  # race still has nothing
    assert a.decision_margin() == 0.0
    small = acc(HeadSpec(labels={"gender": GENDER}), min_face_px=60)
    small.add(gender((0.1, 0.9)), 40, 0.9, None)
    assert small.decision_margin() == 0.0


def test_decision_margin_with_no_heads_at_all_is_zero() -> None:
    a = acc(HeadSpec())
    a.add(gender((0.1, 0.9)), 120, 0.9, None)
    assert a.decision_margin() == 0.0
    assert a.estimate() == AttributeEstimate()


def test_decision_margin_of_a_two_label_head_is_the_smaller_of_its_two_gaps() -> None:
    spec = HeadSpec(labels={"gender": GENDER})  # no age head: no minor gap
    a = acc(spec, min_confidence={"gender": 0.3})
    a.add(gender((0.4, 0.6)), 100, 1.0, None)
    # top vs runner-up 0.6 - 0.4 = 0.2 beats top vs bar 0.6 - 0.3 = 0.3
    assert a.decision_margin() == pytest.approx(0.2)
    b = acc(spec, min_confidence={"gender": 0.7})
    b.add(gender((0.1, 0.9)), 100, 1.0, None)
    # top vs runner-up 0.8, top vs bar |0.9 - 0.7| = 0.2
    assert b.decision_margin() == pytest.approx(0.2)
    c = acc(spec, min_confidence={"gender": 0.7})
    c.add(gender((0.35, 0.65)), 100, 1.0, None)  # below the bar: the gap is still the distance to it
    assert c.decision_margin() == pytest.approx(0.05)


def test_decision_margin_of_a_one_label_head_has_no_runner_up() -> None:
    spec = HeadSpec(labels={"gender": ("person",)})
    a = acc(spec, min_confidence={"gender": 0.6})
    a.add(Attributes(gender=HeadResult(("person",), (1.0,))), 100, 1.0, None)
    assert a.decision_margin() == pytest.approx(0.4)  # top vs nothing 1.0, top vs bar 0.4
    b = acc(spec, min_confidence={"gender": 0.0})
    b.add(Attributes(gender=HeadResult(("person",), (1.0,))), 100, 1.0, None)
    assert b.decision_margin() == pytest.approx(1.0)


def test_decision_margin_includes_the_under_age_mass_vs_minor_probability() -> None:
    spec = HeadSpec(labels={"age": AGE}, age_group_edges=EDGES)
    probs = (0.05, 0.05, 0.3, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0)  # under 18: 0.4; top 20-29 (adult)
    a = acc(spec, min_age_years=18, minor_probability=0.5)
    a.add(Attributes(age=HeadResult(AGE, probs)), 100, 1.0, None)
    assert a.is_minor() is False
    # top vs runner-up 0.6 - 0.3 = 0.3, top vs the age bar 0.6 - 0.3 = 0.3, under-age mass |0.4 - 0.5| = 0.1
    assert a.decision_margin() == pytest.approx(0.1)
    b = acc(spec, min_age_years=18, minor_probability=0.2)
    b.add(Attributes(age=HeadResult(AGE, probs)), 100, 1.0, None)
    assert b.is_minor() is True and b.decision_margin() == pytest.approx(0.2)  # |0.4 - 0.2|


def test_decision_margin_without_gating_has_no_minor_gap() -> None:
    spec = HeadSpec(labels={"age": AGE}, age_group_edges=EDGES)
    probs = (0.05, 0.05, 0.3, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0)
    a = acc(spec, min_age_years=0, minor_probability=0.5)
    a.add(Attributes(age=HeadResult(AGE, probs)), 100, 1.0, None)
    assert a.decision_margin() == pytest.approx(0.3)


def test_decision_margin_is_the_smallest_gap_over_all_heads() -> None:
    a = acc(min_age_years=18, minor_probability=0.5, min_confidence={"age": 0.3, "gender": 0.6, "race": 0.5})
    age = (0.0, 0.0, 0.1, 0.2, 0.6, 0.1, 0.0, 0.0, 0.0)  # gaps 0.4, 0.3; under-age 0.1 -> 0.4
    a.add(
        Attributes(age=HeadResult(AGE, age), gender=gender((0.25, 0.75)).gender, race=head(RACE, 2, 0.9)),
        100,
        1.0,
        None,
    )
    # gender: 0.75 - 0.25 = 0.5, |0.75 - 0.6| = 0.15 (the smallest); race: 0.9 - 0.025, |0.9 - 0.5| = 0.4
    assert a.decision_margin() == pytest.approx(0.15)


# --- add: counters, pose weight, malformed heads ---


def test_every_sample_and_every_small_face_is_counted() -> None:
    a = acc(min_face_px=60)
    for px in (120, 40, 120, 30, 80):
        a.add(gender((0.2, 0.8)), px, 0.9, None)
    assert a.samples == 5 and a.small == 2 and a.rejected == 0


def test_the_pose_passed_to_add_weighs_the_sample() -> None:
    a = acc()
    a.add(gender((0.2, 0.8)), 100, 1.0, Pose(0, 0))  # weight 1
    a.add(gender((0.8, 0.2)), 100, 1.0, Pose(60, 0))  # weight cos 60 deg = 0.5
    assert a.estimate().gender.p == pytest.approx((0.8 + 0.5 * 0.2) / 1.5)


def test_a_malformed_head_does_not_stop_the_other_heads_of_the_frame() -> None:
    a = acc()
    a.add(
        Attributes(age=HeadResult(GENDER, (0.5, 0.5)), age_years=30.0, gender=gender((0.2, 0.8)).gender), 120, 0.9, None
    )
    est = a.estimate()
    assert a.rejected == 1 and est.age.reason == "no_samples"
    assert est.gender.label == "female" and est.age_years == 30.0


def test_a_zero_weight_sample_is_dropped_before_its_heads_are_checked() -> None:
    a = acc()
    a.add(Attributes(gender=HeadResult(("a", "b"), (0.5, 0.5))), 120, 0.0, None)
    assert a.samples == 1 and a.rejected == 0


def test_a_malformed_head_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    a = acc()
    with caplog.at_level(logging.DEBUG, logger="edge_agent.track.aggregate"):
        a.add(Attributes(gender=HeadResult(("a", "b"), (0.5, 0.5))), 120, 0.9, None)
    assert caplog.messages == ["skipping a malformed gender result (labels ('a', 'b'))"]
