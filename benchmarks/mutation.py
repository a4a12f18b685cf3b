"""Mutation testing with mutmut, one scope at a time, in a scratch copy of the repo (never in the working tree).

    python -m benchmarks.mutation track            # or: daemon, analytics, outbox, all
    python -m benchmarks.mutation track --keep     # keep the scratch copy (to `mutmut show <name>` there)
    python -m benchmarks.mutation daemon --only NAME...   # recheck earlier survivors after adding tests
    python -m benchmarks.mutation agent --resume /tmp/mutation-agent-XXXX   # finish an interrupted --keep run

It measures HEAD: commit the tests first.

Each scope mutates its own modules and runs only the tests that exercise them (mutmut's per-function test
selection narrows that further). The score is killed / (killed + survived + no-tests + timeouts); every mutant
that is not killed is listed with its diff, for TESTING.md. Slow (minutes per scope) and CPU-heavy: run it under
`nice`, never in CI. Results go to benchmarks/results/mutation-<scope>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


@dataclass(frozen=True, slots=True)
class Scope:
    modules: tuple[str, ...]  # globs of files to mutate, repo-relative
    tests: tuple[str, ...]  # test files to run


SCOPES: dict[str, Scope] = {
    "daemon": Scope(
        tuple(
            f"edge_agent/daemon/{m}.py"
            for m in ("analytics_adapter", "builders", "camera", "messages", "reload", "sinks", "stats")
        ),
        (
            "tests/test_daemon_camera.py",
            "tests/test_daemon_stats.py",
            "tests/test_daemon_messages.py",
            "tests/test_daemon_agent.py",
            "tests/test_daemon_units.py",
        ),
    ),
    # The composition root itself: its tests run the agent in process on real models (seconds each), so this scope
    # takes hours on two cores; run it on a bigger machine or overnight.
    "agent": Scope(
        ("edge_agent/daemon/agent.py",),
        (
            "tests/test_daemon_agent.py",
            "tests/test_daemon_agent_reload.py",
            "tests/test_daemon_agent_build.py",
            "tests/test_daemon_agent_cameras.py",
            "tests/test_daemon_agent_run.py",
            "tests/test_daemon_agent_init.py",
            "tests/test_commands.py",
            "tests/test_daemon_health.py",
            "tests/test_systemd.py",
        ),
    ),
    "track": Scope(
        ("edge_agent/track/*",),
        (
            "tests/test_track_tracker.py",
            "tests/test_track_aggregate.py",
            "tests/test_track_properties.py",
            "tests/test_track_sampling.py",
            "tests/test_track_units.py",
            "tests/test_track_motion.py",
            "tests/test_detect_schedule.py",
            "tests/test_analytics_attention.py",
            "tests/test_analytics_payloads.py",
        ),
    ),
    "analytics": Scope(
        ("edge_agent/analytics/*",),
        (
            "tests/test_analytics_attention.py",
            "tests/test_analytics_audience.py",
            "tests/test_analytics_payloads.py",
            "tests/test_analytics_summary.py",
            "tests/test_pose.py",
            "tests/test_daemon_units.py",
            "tests/test_analytics_tailfmt.py",
            "tests/test_analytics_units.py",
            "tests/test_analytics_audience_units.py",
            "tests/test_analytics_engine_units.py",
            "tests/test_pose_units.py",
        ),
    ),
    # The outbox's own tests, plus the publisher's and the full-disk ones (tmpfs) that drive it in process; the
    # 60 s WAL-bound test is left out (too slow per mutant).
    "outbox": Scope(
        ("edge_agent/publish/outbox.py",),
        (
            "tests/test_outbox.py",
            "tests/test_outbox_corruption.py",
            "tests/test_publish.py",
            "tests/test_reliability_disk.py",
        ),
    ),
}


def scratch_copy(dest: Path) -> None:
    """The committed tree (HEAD): what is measured is what landed, not whatever is half-edited in the work tree."""
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


_ALSO_COPY = ["systemd", "models", "config.toml", "pyproject.toml", "docs", "examples", "benchmarks", "conversion"]


def configure(dest: Path, scope: Scope) -> None:
    tests = [t for t in scope.tests if (dest / t).is_file()]
    conf = (
        "\n[tool.mutmut]\n"
        'source_paths = ["edge_agent"]\n'
        f"only_mutate = {json.dumps(list(scope.modules))}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
        # mutmut copies only the sources and tests into mutants/; tests also read the unit file, config and models
        f"also_copy = {json.dumps(_ALSO_COPY)}\n"
    )
    with (dest / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write(conf)


def mutmut(dest: Path, *args: str) -> str:
    exe = Path(sys.executable).with_name("mutmut")
    env = dict(os.environ, PYTHONPATH=str(dest))  # the copy, not the editable install, is what the tests import
    res = subprocess.run([str(exe), *args], cwd=dest, env=env, capture_output=True, text=True, check=False)
    return res.stdout + res.stderr


def run_scope(
    name: str, keep: bool, only: list[str] | None = None, resume: Path | None = None, jobs: int = 1
) -> dict[str, object]:
    if resume is not None:  # a kept scratch copy of an interrupted run: mutmut skips the mutants it has judged
        tmp, keep = resume, True
    else:
        tmp = Path(tempfile.mkdtemp(prefix=f"mutation-{name}-"))
    try:
        if resume is None:
            scratch_copy(tmp)
            configure(tmp, SCOPES[name])
        ran = mutmut(tmp, "run", "--max-children", str(jobs), *(only or []))
        listing = mutmut(tmp, "results", "--all", "true")
        status: dict[str, str] = {}
        for line in listing.splitlines():
            m = re.match(r"\s*(\S+__mutmut_\d+): (.+)$", line)
            if m:
                status[m.group(1)] = m.group(2).strip()
        counts: dict[str, int] = {}
        for s in status.values():
            counts[s] = counts.get(s, 0) + 1
        killed = counts.get("killed", 0)
        judged = sum(v for k, v in counts.items() if k not in ("skipped", "not checked"))
        survivors = {
            k: mutmut(tmp, "show", k)
            for k, s in sorted(status.items())
            if s not in ("killed", "skipped", "not checked")  # a recheck leaves the others "not checked"
        }
        if not judged or set(counts) <= {"not checked", "skipped"}:
            # Nothing ran: mutmut stops before mutating when the scope's tests fail unmutated (its "clean" run), e.g.
            # a timing test under heavy load. Say so, with mutmut's own last lines, instead of a silent "n/a".
            tail = "\n".join(ran.replace("\r", "\n").splitlines()[-15:])
            print(f"{name}: mutmut judged no mutant; the end of its output:\n{tail}", file=sys.stderr)
        if only:  # a recheck: only the named mutants were run, the rest are "not checked"
            status = {k: v for k, v in status.items() if v != "not checked"}
            counts = {}
            for s in status.values():
                counts[s] = counts.get(s, 0) + 1
            killed = counts.get("killed", 0)
            judged = sum(v for k, v in counts.items() if k not in ("skipped", "not checked"))
            survivors = {k: v for k, v in survivors.items() if k in status}
        result: dict[str, object] = {
            "scope": name,
            "only": only or [],
            "modules": list(SCOPES[name].modules),
            "tests": list(SCOPES[name].tests),
            "counts": counts,
            "score": round(killed / judged, 4) if judged else None,
            "survivors": survivors,
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / (f"mutation-{name}-recheck.json" if only else f"mutation-{name}.json")
        out.write_text(json.dumps(result, indent=1), encoding="utf-8")
        return result
    finally:
        if keep:
            print(f"scratch copy kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scope", choices=[*SCOPES, "all"])
    ap.add_argument("--keep", action="store_true", help="keep the scratch copy")
    ap.add_argument(
        "--only",
        nargs="+",
        metavar="MUTANT",
        help="run only these mutants (names or globs from an earlier run's survivors): a recheck after new tests",
    )
    ap.add_argument(
        "--resume",
        type=Path,
        metavar="SCRATCH",
        help="continue an interrupted run in its kept scratch copy (printed by --keep), then score it",
    )
    ap.add_argument("--jobs", type=int, default=1, help="mutants tested at once (mutmut --max-children)")
    args = ap.parse_args(argv)
    if args.resume is not None and (args.scope == "all" or not (args.resume / "mutants").is_dir()):
        ap.error("--resume takes one scope and a scratch copy that mutmut has run in (it has a mutants/ folder)")
    for name in SCOPES if args.scope == "all" else [args.scope]:
        r = run_scope(name, args.keep, args.only, args.resume, args.jobs)
        score = r["score"]
        shown = "n/a" if score is None else f"{100 * float(score):.1f}%"  # type: ignore[arg-type]
        print(f"{name}: mutation score {shown} {r['counts']}; {len(r['survivors'])} not killed")  # type: ignore[arg-type]
        for key in r["survivors"]:  # type: ignore[union-attr]
            print(f"  {key}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
