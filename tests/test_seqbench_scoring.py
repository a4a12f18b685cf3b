"""The sequence bench's scoring (pure): track recall, identity switches, first-detection delay, label agreement;
and the walk-in generator's ground truth follows the pasted face."""

from __future__ import annotations

import numpy as np

from edge_agent.records import Box
from edge_agent.seqbench import Observed, agreement, score
from edge_agent.sequences import FaceImage, Person, Scenario, Truth

FPS = 10.0


def _obs(tracks_per_frame: list[list[tuple[str, Box]]], truth_box: Box, enter: int) -> Observed:
    obs = Observed()
    for i, tracks in enumerate(tracks_per_frame):
        t = i / FPS
        obs.frames += 1
        obs.frame_ms.append(1.0)
        obs.times.append(t)
        obs.truth.append([Truth(0, truth_box, 1.0)] if i >= enter else [])
        obs.tracks.append(tracks)
        obs.seen.append([(tid, b, t) for tid, b in tracks])
    obs.cpu_s = 0.1
    return obs


def test_recall_switches_and_first_detection_are_counted_from_the_ground_truth() -> None:
    face = Box(100, 100, 150, 150)
    frames = [[]] * 3 + [[]] * 2 + [[("a", face)]] * 3 + [[]] + [[("b", face)]] * 3  # enters at frame 3
    sc = score(_obs(frames, face, enter=3), FPS)
    assert sc["track_recall"] == round(6 / 9, 4)  # 9 frames in view, 6 covered
    assert sc["id_switches"] == 1  # a -> b
    assert sc["first_detection_s"]["p50"] == 0.2  # seen 2 frames after it entered
    assert sc["cpu_pct"] == round(100 * 0.1 / (12 / FPS), 2)


def test_label_agreement_counts_clear_visits_apart() -> None:
    base = {0: {"gender": "male", "_margin": 0.3}, 1: {"gender": "female", "_margin": 0.01}, 2: {"gender": "male"}}
    new = {0: {"gender": "male", "_margin": 0.2}, 1: {"gender": "male", "_margin": 0.02}}
    a = agreement(base, new)
    assert (a["visits"], a["same"], a["clear_visits"], a["clear_same"]) == (3, 1, 1, 1)
    assert set(a["differing"]) == {"1", "2"}


def test_walk_in_ground_truth_box_lies_on_the_pasted_face() -> None:
    chip = np.zeros((100, 100, 3), np.uint8)
    chip[20:80, 30:70] = 255  # the "face": a white block at fractions (0.3, 0.2, 0.7, 0.8)
    person = Person(FaceImage(chip, (0.3, 0.2, 0.7, 0.8)), 40.0, 320.0, 240.0, 0.0, 10.0, turn_deg=0.0)
    scen = Scenario("t", 3.0, (person,), np.zeros((480, 640, 3), np.uint8), noise=0.0)
    frames = list(scen.frames(FPS))
    _, img, truth = frames[-1]  # standing
    box = truth[0].box
    assert abs(box.width - 40.0) < 1.5
    inner = img[int(box.y1) + 3 : int(box.y2) - 3, int(box.x1) + 3 : int(box.x2) - 3]
    assert inner.min() > 200  # inside the box: the white face
    assert img[: int(box.y1) - 25].max() < 30  # well above it: background
