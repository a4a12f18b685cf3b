"""Pure-numpy BlazeFace post-processing: score sigmoid, box and keypoint decoding, plain and weighted NMS."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_KEYPOINTS = 6
RAW_SCORE_CLIP = 100.0  # MediaPipe's score_clipping_thresh


@dataclass(frozen=True, slots=True)
class Candidates:
    """Decoded detections in one coordinate system: boxes (N, 4) x1 y1 x2 y2, scores (N,), keypoints (N, 6, 2)."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def take(self, index: np.ndarray) -> Candidates:
        return Candidates(self.boxes[index], self.scores[index], self.keypoints[index])

    @staticmethod
    def empty() -> Candidates:
        return Candidates(
            np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, NUM_KEYPOINTS, 2), np.float32)
        )

    @staticmethod
    def concat(parts: list[Candidates]) -> Candidates:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Candidates.empty()
        return Candidates(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.keypoints for p in parts]),
        )


def sigmoid_scores(raw: np.ndarray, clip: float = RAW_SCORE_CLIP) -> np.ndarray:
    """Logits -> probabilities after clipping to ±clip; computed in float64 so exp(100) cannot overflow."""
    x = np.clip(np.asarray(raw, dtype=np.float64).reshape(-1), -clip, clip)
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def logit(p: float) -> float:
    """Inverse sigmoid, to threshold raw scores before decoding anything."""
    p = min(max(p, 1e-7), 1.0 - 1e-7)
    return float(np.log(p / (1.0 - p)))


def decode(raw_boxes: np.ndarray, anchors_px: np.ndarray, scores: np.ndarray) -> Candidates:
    """Raw regressions (N, 16) + anchor centres in input pixels (N, 2) -> boxes and keypoints in input pixels.

    BlazeFace regresses [dx, dy, w, h, kx0, ky0, ..., kx5, ky5] in input pixels relative to the anchor centre
    (MediaPipe: x_scale = input width and fixed 1x1 anchors, so raw / scale * anchor_w * width = raw).
    """
    raw = np.asarray(raw_boxes, dtype=np.float32).reshape(-1, 2 + NUM_KEYPOINTS, 2)
    anchors = np.asarray(anchors_px, dtype=np.float32)
    centre = raw[:, 0] + anchors
    half = raw[:, 1] / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 2:] + anchors[:, None, :]
    return Candidates(boxes, np.asarray(scores, dtype=np.float32), keypoints)


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) against many (M, 4), x1 y1 x2 y2; 0 where the union is empty."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0.0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0.0, None)
    inter = ix * iy
    area = max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0.0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0.0, None)
    union = area + areas - inter
    iou: np.ndarray = np.divide(inter, union, out=np.zeros_like(inter, dtype=np.float64), where=union > 0)
    return iou


def nms(cands: Candidates, iou_threshold: float, weighted: bool = True, max_out: int = 0) -> Candidates:
    """Non-maximum suppression, highest score first; boxes overlapping the kept one by IoU > threshold go.

    Weighted (MediaPipe's WEIGHTED): the kept box and keypoints become the score-weighted mean of its cluster
    (itself included), which steadies boxes that several anchors agree on; its score stays the top score.
    max_out > 0 stops after that many outputs.
    """
    if len(cands) == 0:
        return cands
    order = np.argsort(-cands.scores, kind="stable")
    boxes, scores, kps = cands.boxes[order], cands.scores[order], cands.keypoints[order]
    alive = np.ones(len(order), dtype=bool)
    out_b, out_s, out_k = [], [], []
    for i in range(len(order)):
        if not alive[i]:
            continue
        rest = np.flatnonzero(alive)
        cluster = rest[iou_one_to_many(boxes[i], boxes[rest]) > iou_threshold]
        cluster = np.union1d(cluster, [i])
        alive[cluster] = False
        if weighted:
            w = scores[cluster].astype(np.float64)
            w /= w.sum()
            out_b.append((boxes[cluster] * w[:, None]).sum(axis=0))
            out_k.append((kps[cluster] * w[:, None, None]).sum(axis=0))
        else:
            out_b.append(boxes[i])
            out_k.append(kps[i])
        out_s.append(scores[i])
        if 0 < max_out <= len(out_s):
            break
    return Candidates(
        np.asarray(out_b, np.float32).reshape(-1, 4),
        np.asarray(out_s, np.float32),
        np.asarray(out_k, np.float32).reshape(-1, NUM_KEYPOINTS, 2),
    )
