"""`edge-agent tail`'s one-line bodies for tracks, audience and summary messages: exact text for each case."""

from __future__ import annotations

from typing import Any

import pytest

from edge_agent.analytics import tailfmt
from edge_agent.publish import tail

ATTRS = {
    "attributes": {
        "age": {"label": "30-39", "p": 0.6},
        "gender": {"label": "female", "p": 0.9},
        "race": {"label": "unknown", "p": None},
        "age_years": 33.6,
    }
}


def test_new_record_shows_the_short_id_and_the_score() -> None:
    assert tailfmt.tracks_body({"event": "new", "track_id": "0123456789abcdef", "score": 0.87}) == (
        "new 012345 score=0.87"
    )


def test_update_record_shows_dwell_looking_attention_and_labels() -> None:
    msg = {"event": "update", "track_id": "abcdef123456", "dwell_s": 3.25, "looking": True, "attention_s": 1.04}
    msg |= {"glances": 2, **ATTRS}
    assert tailfmt.tracks_body(msg) == (
        "update abcdef dwell=3.2s looking attention=1.0s glances=2 "
        "age=30-39(0.60) gender=female(0.90) race=unknown ~34y"
    )
    bare = {"event": "update", "track_id": "abcdef123456", "looking": False}
    assert tailfmt.tracks_body(bare) == "update abcdef dwell=0.0s away attention=0.0s glances=0"


def test_end_record_says_viewer_or_passer_by() -> None:
    msg = {"event": "end", "track_id": "fedcba987654", "dwell_s": 12.0, "attention_s": 4.56, "glances": 3}
    assert tailfmt.tracks_body({**msg, "viewer": True, "minor": True}) == (
        "end fedcba dwell=12.0s attention=4.6s glances=3 viewer minor"
    )
    assert tailfmt.tracks_body({**msg, "viewer": False}) == "end fedcba dwell=12.0s attention=4.6s glances=3 passer-by"
    assert tailfmt.tracks_body({"event": "end"}) == "end  dwell=0.0s attention=0.0s glances=0 passer-by"


def test_attributes_accept_integer_probabilities_and_skip_malformed_heads() -> None:
    msg: dict[str, Any] = {"event": "end", "track_id": "a", "viewer": True}
    msg["attributes"] = {"gender": {"label": "male", "p": 1}, "age_years": 40, "race": "white", "age": None}
    assert tailfmt.tracks_body(msg).endswith("viewer gender=male(1.00) ~40y")
    msg["attributes"] = {"age_years": "old"}
    assert tailfmt.tracks_body(msg).endswith("viewer")
    assert tailfmt.tracks_body({**msg, "minor": False, "attributes": None}).endswith("viewer")


def test_audience_body_lists_short_ids_of_lookers_and_the_dominant_group() -> None:
    msg = {"count": 3, "looking_count": 2, "looking": ["aaaaaa111", "bbbbbb222"]}
    assert tailfmt.audience_body({**msg, "dominant": {"gender": "female", "age": "20-29"}}) == (
        "3 present, 2 looking [aaaaaa,bbbbbb] dominant=female/20-29"
    )
    assert tailfmt.audience_body(msg) == "3 present, 2 looking [aaaaaa,bbbbbb]"
    assert tailfmt.audience_body({}) == "0 present, 0 looking []"


def test_summary_body_has_the_interval_and_its_headline_numbers() -> None:
    msg = {
        "interval_start": "2026-12-01T12:34:00.000Z",
        "interval_s": 60.0,
        "opportunities_to_see": 7,
        "viewers": 4,
        "passers_by": 3,
        "minors": {"counted": 2, "under_13": 1},
        "dwell_s": {"average": 5.55},
        "attention_s": {"total": 12.34},
    }
    assert tailfmt.summary_body(msg) == (
        "12:34:00+60s OTS=7 viewers=4 passers-by=3 minors=3 dwell avg=5.5s attention total=12.3s"
    )
    assert tailfmt.summary_body({**msg, "partial": True}).startswith("12:34:00+60s (partial) OTS=7")
    assert tailfmt.summary_body({}) == "+0s OTS=0 viewers=0 passers-by=0 minors=0 dwell avg=0.0s attention total=0.0s"


@pytest.fixture
def formatters() -> Any:
    saved = dict(tail._FORMATTERS)
    yield tail._FORMATTERS
    tail._FORMATTERS.clear()
    tail._FORMATTERS.update(saved)


def test_register_installs_the_three_bodies_by_schema_name(formatters: dict[str, Any]) -> None:
    formatters.clear()
    tailfmt.register()
    assert formatters == {
        "tracks": tailfmt.tracks_body,
        "audience": tailfmt.audience_body,
        "summary": tailfmt.summary_body,
    }
