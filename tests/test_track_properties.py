"""Property tests: whatever faces arrive, the tracker's and the summaries' bookkeeping stays consistent."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.analytics.config import AnalyticsConfig, SummaryConfig
from edge_agent.analytics.engine import CameraAnalytics
from edge_agent.analytics.synthetic import head, make_face
from edge_agent.records import Attributes
from edge_agent.track.config import TrackerConfig
from edge_agent.track.events import HeadSpec, TrackEnd, TrackNew

GENDER = ("male", "female")
SPEC = HeadSpec(labels={"gender": GENDER})
T0 = 1_800_000_000.0

face_st = st.tuples(
    st.floats(0, 640),  # centre x
    st.floats(0, 480),  # centre y
    st.floats(10, 200),  # width
    st.floats(-80, 80),  # yaw
    st.sampled_from([None, 0, 1]),  # no attributes / male / female
)
frames_st = st.lists(st.lists(face_st, max_size=4), min_size=1, max_size=60)
steps_st = st.lists(st.floats(0.01, 1.5), min_size=60, max_size=60)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=frames_st, steps=steps_st)
def test_every_published_visit_ends_exactly_once_with_sane_numbers(frames, steps) -> None:
    engine = CameraAnalytics(
        TrackerConfig(update_interval_s=0.5),
        AnalyticsConfig(summary=SummaryConfig(interval_s=5)),
        SPEC,
    )
    msgs = []
    t = T0
    for faces, dt in zip(frames, steps, strict=False):
        t += dt
        batch = [
            make_face(x, y, w, yaw=yaw, attributes=None if g is None else Attributes(gender=head(GENDER, g, 0.8)))
            for x, y, w, yaw, g in faces
        ]
        msgs += engine.process(batch, t)
    msgs += engine.flush(t + 1)
    events = [m.event for m in msgs if m.topic == "tracks"]
    new = [e.track_id for e in events if isinstance(e, TrackNew)]
    ends = [e for e in events if isinstance(e, TrackEnd)]
    assert len(new) == len(set(new))  # ids never repeat
    assert sorted(new) == sorted(e.track_id for e in ends)  # every visit ends exactly once
    seen: set[str] = set()
    for e in events:  # nothing about a visit before its `new` or after its `end`
        if isinstance(e, TrackNew):
            seen.add(e.track_id)
        assert e.track_id in seen
        if isinstance(e, TrackEnd):
            seen.discard(e.track_id)
    for e in ends:
        assert 0 <= e.attention_s <= e.dwell_s + 1e-9
        assert e.samples >= 2 and e.glances >= 0
        assert not (e.viewer and e.short)
        assert (e.time_to_first_glance_s is None) == (e.glances == 0)
    summaries = [m.payload for m in msgs if m.topic == "summary"]
    assert sum(s["opportunities_to_see"] for s in summaries) == len(ends)
    for s in summaries:
        assert s["viewers"] + s["passers_by"] + sum(s["minors"].values()) == s["opportunities_to_see"]
        assert sum(b["viewers"] + b["passers_by"] for b in s["dwell_buckets"]) == s["viewers"] + s["passers_by"]
