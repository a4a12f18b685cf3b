"""Every tracks/audience/summary payload validates against its schema; disabled heads and minors leak nothing."""

from __future__ import annotations

import json

import pytest

from edge_agent.analytics.config import AnalyticsConfig, SummaryConfig
from edge_agent.analytics.engine import AnalyticsMessage, CameraAnalytics
from edge_agent.analytics.summary import SummaryModel
from edge_agent.analytics.synthetic import head, make_face
from edge_agent.publish import envelope, schemas
from edge_agent.records import Attributes
from edge_agent.track.config import TrackerConfig
from edge_agent.track.events import HeadSpec

AGE = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+")
EDGES = (0, 3, 10, 20, 30, 40, 50, 60, 70)
GENDER = ("male", "female")
RACE = ("white", "black", "asian", "indian", "other")
ALL = {"age": AGE, "gender": GENDER, "race": RACE}
MODEL = SummaryModel("attributes-int8", "1.0.0", "0" * 64)
T0 = 1_800_000_000.0


def spec(*heads: str) -> HeadSpec:
    return HeadSpec(
        labels={h: ALL[h] for h in heads}, age_group_edges=EDGES if "age" in heads else (), age_years="age" in heads
    )


def adult() -> Attributes:
    return Attributes(age=head(AGE, 4, 0.7), age_years=34.0, gender=head(GENDER, 1, 0.9), race=head(RACE, 3, 0.8))


def child() -> Attributes:
    return Attributes(age=head(AGE, 1, 0.8), age_years=7.0, gender=head(GENDER, 0, 0.9), race=head(RACE, 0, 0.9))


def scene(heads: HeadSpec) -> list[AnalyticsMessage]:
    """An adult who looks, a child, a tiny far-away face, and an adult who never looks; 12 s at 10 fps."""
    analytics = AnalyticsConfig(summary=SummaryConfig(interval_s=5))
    engine = CameraAnalytics(TrackerConfig(update_interval_s=1.0), analytics, heads, MODEL)
    out: list[AnalyticsMessage] = []
    for i in range(120):
        t = T0 + i / 10
        faces = []
        if i < 80:
            faces.append(make_face(120 + i, yaw=0.0 if i > 20 else 50.0, attributes=adult()))
        if 10 <= i < 60:
            faces.append(make_face(420, width=110, attributes=child()))
        if 30 <= i < 70:
            faces.append(make_face(560, cy=80, width=30, attributes=adult()))
        if 40 <= i < 100:
            faces.append(make_face(300, cy=400, width=90, yaw=70.0, attributes=adult()))
        out += engine.process(faces, t, mono=100.0 + i / 10)
    return out + engine.flush(T0 + 12.5)


def wrap(msg: AnalyticsMessage, seq: int) -> dict:
    data = envelope.encode(
        msg.payload,
        schema=msg.schema,
        msg_id=envelope.new_msg_id(),
        seq=seq,
        epoch=1_795_372_800_000,
        ts=T0,
        device_id="dev-1",
        camera_id="cam0",
    )
    return json.loads(data)


@pytest.mark.parametrize("heads", [("age", "gender", "race"), ("age", "gender"), ("gender",), ()])
def test_every_message_of_a_scene_validates_against_its_schema(heads: tuple[str, ...]) -> None:
    msgs = scene(spec(*heads))
    topics = {m.topic for m in msgs}
    assert topics == {"tracks", "audience", "summary"}
    events = {m.payload["event"] for m in msgs if m.topic == "tracks"}
    assert events == {"new", "update", "end"}
    for seq, msg in enumerate(msgs, 1):
        schemas.validate(wrap(msg, seq))


def test_a_disabled_head_appears_in_no_payload() -> None:
    text = json.dumps([m.payload for m in scene(spec("age", "gender"))])
    assert '"race"' not in text
    for label in ("white", "black", "asian", "indian"):
        assert label not in text
    assert '"gender"' in text and '"age"' in text


def test_a_minor_is_a_count_only_everywhere() -> None:
    msgs = scene(spec("age", "gender", "race"))
    ends = [m.payload for m in msgs if m.topic == "tracks" and m.payload["event"] == "end"]
    minors = [e for e in ends if e.get("minor")]
    assert len(minors) == 1 and "attributes" not in minors[0]
    for m in msgs:
        if m.topic == "audience":
            for person in m.payload["present"]:
                assert not (person.get("minor") and "attributes" in person)
    summaries = [m.payload for m in msgs if m.topic == "summary"]
    assert sum(s["minors"]["viewers"] + s["minors"]["passers_by"] for s in summaries) == 1
    assert not any(set(s["age"]) & {"0-2", "3-9", "10-19"} for s in summaries)


def test_summaries_count_exactly_the_end_records_sent_in_their_interval() -> None:
    msgs = scene(spec("age", "gender"))
    ends = 0
    total = 0
    for m in msgs:
        if m.topic == "tracks" and m.payload["event"] == "end":
            ends += 1
        if m.topic == "summary":
            assert m.payload["opportunities_to_see"] == ends
            total += ends
            ends = 0
    assert total == 4 and ends == 0


def test_the_small_face_reports_unknown_for_every_head() -> None:
    ends = [m.payload for m in scene(spec("age", "gender")) if m.topic == "tracks" and m.payload["event"] == "end"]
    small = [e for e in ends if "attributes" in e and e["attributes"]["gender"]["label"] == "unknown"]
    assert len(small) == 1
    assert small[0]["attributes"]["gender"]["reason"] == "small_face"
    assert small[0]["attributes"]["age"]["label"] == "unknown"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.update(image="aGVsbG8="),  # pixels would need a key the schema does not allow
        lambda p: p.update(embedding=[0.1, 0.2]),
        lambda p: p["attributes"]["gender"].update(p=1.5),  # probabilities are 0-1
        lambda p: p.update(minor=True),  # a minor must not carry attributes
        lambda p: p["attributes"].update(mood={"label": "happy", "p": 0.5}),  # unknown head
    ],
)
def test_the_tracks_schema_rejects_what_must_never_be_sent(mutate) -> None:
    end = next(
        m
        for m in scene(spec("age", "gender"))
        if m.topic == "tracks"
        and m.payload["event"] == "end"
        and "attributes" in m.payload
        and m.payload["attributes"]["gender"]["label"] != "unknown"
    )
    good = wrap(end, 1)
    schemas.validate(good)
    bad = json.loads(json.dumps(good))
    mutate(bad)
    with pytest.raises(schemas.SchemaError):
        schemas.validate(bad)


def test_tail_formats_every_message_on_one_line() -> None:
    from edge_agent.analytics import tailfmt

    bodies = {"tracks": tailfmt.tracks_body, "audience": tailfmt.audience_body, "summary": tailfmt.summary_body}
    lines = [bodies[m.topic](m.payload) for m in scene(spec("age", "gender"))]
    assert all(line and "\n" not in line for line in lines)
    assert any(line.startswith("end ") and "viewer" in line and "gender=female(0.90)" in line for line in lines)
    assert any(line.startswith("end ") and line.endswith(" minor") for line in lines)
    assert any("looking [" in line for line in lines) and any("OTS=" in line for line in lines)
    tailfmt.register()
