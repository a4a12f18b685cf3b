"""`python -m benchmarks all --data ../shared/data/utkface`: every comparison in one run → BENCHMARKS.md + plots.

Other commands: `venvs` (create the peer and tflite-runtime venvs), `soak --minutes 20`, `bench` (the same
figures as `edge-agent bench`). Exit codes: 0 ok, 2 usage/config error, 1 runtime failure.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("benchmarks")


class UsageError(ValueError):
    """Bad arguments: one line, exit 2."""


def _section(name: str, fn: Callable[[], Any]) -> Any:
    """Run one comparison; a failure is logged and recorded as skipped so the others still run."""
    t0 = time.monotonic()
    log.info("%s …", name)
    try:
        out = fn()
    except Exception as exc:  # noqa: BLE001 - one comparison's failure must not lose the rest of the run
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        log.error("%s failed: %s: %s", name, type(exc).__name__, first)
        return {"skipped": f"failed: {type(exc).__name__}: {first}"}
    log.info("%s done in %.0f s", name, time.monotonic() - t0)
    return out


def _model_info(model: Path) -> dict[str, Any]:
    from edge_agent.modelmeta import load_metadata

    meta = load_metadata(model)
    return {
        "path": str(model),
        "name": meta.name,
        "version": meta.version,
        "sha256": meta.sha256,
        "quantization": meta.quantization,
    }


def _check(args: argparse.Namespace) -> None:
    if not args.data.is_dir():
        raise UsageError(f"--data {args.data}: not a folder (expected a UTKFace-style folder of labelled chips)")
    if not args.model.is_file():
        raise UsageError(f"--model {args.model}: attribute model not found (pass --model FILE.tflite)")
    if args.float_model is None:
        guesses = [args.model.with_name(args.model.name.replace("int8", f)) for f in ("float", "float32", "fp32")]
        args.float_model = next((g for g in guesses if g != args.model and g.is_file()), None)


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every comparison, in one process, one after the other; returns the results dict."""
    from benchmarks import accuracy, agent, detection, machine, runtimes, speed
    from benchmarks.dataset import held_out_items
    from edge_agent import models_store

    _check(args)
    peer = not args.no_peer
    started = time.monotonic()
    res: dict[str, Any] = {
        "command": args.command_line,
        "machine": machine.facts(),
        "model": _model_info(args.model),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    held = held_out_items(args.data, limit=args.limit)
    res["data"] = {
        "dir": str(args.data),
        "held_out": len(held_out_items(args.data).items) if args.limit else len(held.items),
        "used": len(held.items),
        "skipped": dict(held.skipped),
    }
    res["accuracy"] = _section("accuracy", lambda: accuracy.compare(held, args.model, with_peer=peer))
    res["speed"] = _section("speed", lambda: speed.compare(args.data, args.model, args.repeats, with_peer=peer))
    res["detection"] = _section("detection", lambda: _detection(args, peer))
    video = args.video if args.video and args.video.is_file() else None
    res["video"] = (
        _section("video", lambda: detection.compare_video(video, with_peer=peer, step=args.video_step))
        if video
        else {"skipped": f"clip not found: {args.video}"}
    )
    short = _store_path(models_store, "face_detection_short_range")
    res["runtimes"] = _section(
        "runtimes",
        lambda: runtimes.compare(
            args.model, args.float_model, short, args.repeats, with_tflr=peer, with_tf=not args.no_tf
        ),
    )
    res["agent"] = _section(
        "agent",
        lambda: agent.compare(args.model, args.bench_frames, args.peer_frames, args.paced_frames, with_peer=peer),
    )
    soak = args.results / "soak.json"
    res["soak"] = json.loads(soak.read_text()) if soak.is_file() else None
    res["duration_s"] = time.monotonic() - started
    return res


def _store_path(models_store: Any, name: str) -> Path | None:
    try:
        return Path(models_store.resolve(name))
    except Exception:  # noqa: BLE001 - the runtimes table just leaves the detector out
        return None


def _detection(args: argparse.Namespace, peer: bool) -> dict[str, Any]:
    from benchmarks import detection

    frames = detection.make_frames(args.det_frames, args.data, seed=0)
    results = detection.compare(frames, with_peer=peer)
    plot = detection.plot_recall(results, args.results / "detection_recall.png")
    return {
        "frames": len(frames.truth),
        "faces": sum(len(t) for t in frames.truth),
        "results": results,
        "plot": _rel(plot, args.out.parent),
    }


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def write_outputs(res: dict[str, Any], args: argparse.Namespace) -> None:
    from benchmarks.report import render

    args.results.mkdir(parents=True, exist_ok=True)
    slim = json.loads(json.dumps(res, default=str))
    (args.results / "results.json").write_text(json.dumps(slim, indent=1) + "\n", encoding="utf-8")
    args.out.write_text(render(res), encoding="utf-8")
    print(f"wrote {args.out} and {args.results}/")


def cmd_report(args: argparse.Namespace) -> int:
    """Re-render BENCHMARKS.md from the last `all` run's results.json, taking in the latest soak.json."""
    from benchmarks.report import render

    saved = args.results / "results.json"
    if not saved.is_file():
        raise UsageError(f"no {saved}: run `python -m benchmarks all --data …` first")
    res = json.loads(saved.read_text(encoding="utf-8"))
    soak = args.results / "soak.json"
    res["soak"] = json.loads(soak.read_text(encoding="utf-8")) if soak.is_file() else None
    args.out.write_text(render(res), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


def cmd_all(args: argparse.Namespace) -> int:
    write_outputs(run_all(args), args)
    return 0


def cmd_venvs(args: argparse.Namespace) -> int:
    from benchmarks import venvs

    bad = 0
    for name in venvs.VENVS:
        py = venvs.ensure_venv(name)
        print(f"{name:5s} {py if py else 'unavailable'}")
        bad += py is None
    return 1 if bad else 0


def cmd_soak(args: argparse.Namespace) -> int:
    from benchmarks import soak

    res = soak.run_soak(args.minutes, args.clip, args.interval)
    res["command"] = args.command_line
    res["plot"] = _rel(soak.plot(res, args.results / "soak.png"), args.out.parent)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "soak.json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    print(
        f"soak {res['minutes']:g} min, {res['frames']} frames: RSS {res['rss_first_mb']:.1f} → "
        f"{res['rss_last_mb']:.1f} MB (growth {res['rss_growth_mb']:+.2f} MB), fds {res['fds_min']}..{res['fds_max']}"
        f", threads {res['threads_min']}..{res['threads_max']}"
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks.targets import format_bench
    from edge_agent.bench import run_bench

    print(format_bench(run_bench(None, frames=args.frames, model_path=args.model if args.model.is_file() else None)))
    return 0


def parser() -> argparse.ArgumentParser:
    from benchmarks.ours import DEFAULT_MODEL

    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("all", help="every comparison in one run; writes BENCHMARKS.md and benchmarks/results/")
    a.add_argument("--data", type=Path, required=True, help="UTKFace-style folder (only its held-out split is used)")
    a.add_argument("--limit", type=int, default=None, help="at most this many held-out images for accuracy")
    a.add_argument(
        "--float-model",
        type=Path,
        default=None,
        help="float model for the runtimes table (default: the int8 model's name with 'float')",
    )
    a.add_argument("--video", type=Path, default=REPO.parent / "shared" / "data" / "video" / "face.mp4")
    a.add_argument("--video-step", type=int, default=3, help="use every n-th frame of the clip")
    a.add_argument("--det-frames", type=int, default=400, help="synthetic frames for detection range")
    a.add_argument("--repeats", type=int, default=200, help="timed repetitions per speed figure")
    a.add_argument("--bench-frames", type=int, default=600, help="frames for the whole-agent bench")
    a.add_argument("--peer-frames", type=int, default=150, help="frames for the peer's frame-by-frame loop")
    a.add_argument("--paced-frames", type=int, default=300, help="frames of the paced 30 fps CPU measurement")
    a.add_argument("--no-peer", action="store_true", help="skip everything that needs the benchmark venvs")
    a.add_argument("--no-tf", action="store_true", help="skip tf.lite in the runtimes table")
    s = sub.add_parser("soak", help="run the agent on a looping clip; sample RSS, fds, threads")
    s.add_argument("--minutes", type=float, default=20.0)
    s.add_argument("--clip", type=Path, default=REPO.parent / "shared" / "data" / "video" / "face.mp4")
    s.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    b = sub.add_parser("bench", help="the edge-agent bench figures")
    b.add_argument("--frames", type=int, default=600)
    sub.add_parser("venvs", help="create the peer and tflite-runtime venvs (EDGE_AGENT_BENCH_VENVS or ../venvs)")
    r = sub.add_parser("report", help="re-render the report from results.json (e.g. after a new soak run)")
    from benchmarks import sequences

    seq = sequences.add_parser(sub)
    for q in (a, s, b, r, seq):
        q.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="int8 attribute model (.tflite + .json)")
        q.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md", help="report to write")
        q.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results", help="JSON and PNG folder")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(name)s: %(message)s")
    args.command_line = "python -m benchmarks " + " ".join(shlex.quote(a) for a in argv)
    from benchmarks import sequences

    commands = {"all": cmd_all, "venvs": cmd_venvs, "soak": cmd_soak, "bench": cmd_bench, "report": cmd_report}
    commands["sequences"] = sequences.cmd
    try:
        return commands[args.cmd](args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.verbose:
            raise
        print(
            f"error: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
