"""Verification report files: report.json, summary.md, confusion matrices, per-race accuracy, framing sweep and
reliability plots (PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conversion.labels import AGE_GROUPS, GENDERS, RACES

_HEADS = {"age": AGE_GROUPS, "gender": GENDERS, "race": RACES}


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.2f}%"


def _num(v: float | None, fmt: str = ".2f") -> str:
    return "—" if v is None else format(v, fmt)


def _head_rows(name: str, m: dict[str, Any]) -> str:
    return (
        f"| {name} | {m.get('n', '')} | {_pct(m.get('gender_acc'))} | {_pct(m.get('race_acc'))} | "
        f"{_pct(m.get('age_acc'))} | {_pct(m.get('age_one_off'))} | {_num(m.get('age_mae'))} |"
    )


def markdown(r: dict[str, Any]) -> str:
    f, q = r["float"], r["quant"]
    data = r["data"] if isinstance(r["data"], list) else [r["data"]]
    lines = [
        f"# Verification: {Path(r['quant_model']).name} ({r['quantization']}) vs {Path(r['float_model']).name}",
        "",
        f"{r['n_images']} images, split `{r['split']}` of {', '.join(f'`{d}`' for d in data)}, through the device "
        f"path (the agent's detector box on {r.get('detector_found', '?')} of them, else the dataset crop; the "
        f"agent's crop function at margin {r.get('crop_margin', '?')}"
        + (
            "; test-time flip on, as the metadata asks: each face and its mirror, averaged"
            if r.get("flip_applied")
            else ""
        )
        + f"). Gate: quantized may lose at most "
        f"{r['max_drop_points']} points per head → **{'PASSED' if r['passed'] else 'FAILED'}**.",
        "",
        "| measure | float | quantized | drop (points) | argmax agreement |",
        "|---|---|---|---|---|",
    ]
    for h in _HEADS:
        if q.get(f"{h}_acc") is not None:
            lines.append(
                f"| {h} accuracy | {_pct(f.get(h + '_acc'))} | {_pct(q.get(h + '_acc'))} | "
                f"{r['drop_points'].get(h, 0):.2f} | {_pct(r['agreement'].get(h))} |"
            )
    if q.get("age_one_off") is not None:
        lines.append(f"| age group one-off | {_pct(f.get('age_one_off'))} | {_pct(q.get('age_one_off'))} | | |")
    if q.get("age_mae") is not None:
        lines.append(
            f"| age MAE (years) | {_num(f.get('age_mae'))} | {_num(q.get('age_mae'))} | | "
            f"mean abs diff {r['agreement'].get('age_years_mean_abs_diff', 0):.2f} y |"
        )
    if q.get("gender_race_gap") is not None:
        lines.append(
            f"| gender gap best−worst race | {f['gender_race_gap'] * 100:.2f} pts | "
            f"{q['gender_race_gap'] * 100:.2f} pts | | |"
        )
    ps = r.get("per_source")
    if ps:
        lines += [
            "",
            "**Per source** (n, gender, race, age group exact, one-off, MAE)",
            "",
            "| source / crop | n | gender | race | age exact | age one-off | MAE (y) |",
            "|---|---|---|---|---|---|---|",
        ]
        for src in ps["quant"]:
            lines.append(_head_rows(f"{src}: int8, detector box", ps["quant"][src]))
            lines.append(_head_rows(f"{src}: float, detector box", ps["float"][src]))
            lines.append(_head_rows(f"{src}: int8, dataset crop", ps["quant_dataset_crop"][src]))
    lines += [
        "",
        "**Gender accuracy by race group** (all sources)",
        "",
        "| race | n | float | quantized |",
        "|---|---|---|---|",
    ]
    for race, v in q.get("gender_acc_by_race", {}).items():
        fv = f.get("gender_acc_by_race", {}).get(race, {}).get("acc")
        lines.append(f"| {race} | {v['n']} | {_pct(fv)} | {_pct(v['acc'])} |")
    if ps:
        for src, m in ps["quant"].items():
            by = m.get("gender_acc_by_age", {})
            if by:
                lines += [
                    "",
                    f"**Gender accuracy by age group, {src}** (int8)",
                    "",
                    "| " + " | ".join(by) + " |",
                    "|" + "---|" * len(by),
                    "| " + " | ".join(f"{_pct(v['acc'])} (n={v['n']})" for v in by.values()) + " |",
                ]
    if r.get("framing"):
        lines += [
            "",
            "**Framing sweep** (int8; margin per side, box shift in box widths/heights)",
            "",
            "| margin | dx | dy | gender | race | age exact | MAE (y) |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in r["framing"]:
            lines.append(
                f"| {row['margin']:+.2f} | {row['dx']:+.2f} | {row['dy']:+.2f} | {_pct(row.get('gender_acc'))} | "
                f"{_pct(row.get('race_acc'))} | {_pct(row.get('age_acc'))} | {_num(row.get('age_mae'))} |"
            )
    cal = r.get("calibration")
    if cal:
        lines += [
            "",
            "**Calibration** (int8, expected calibration error, 10 bins)",
            "",
            "| head | temperature | ECE raw | ECE calibrated |",
            "|---|---|---|---|",
        ]
        for h, v in cal.items():
            lines.append(
                f"| {h} | {v['temperature']:.3f} | {_num(v['raw']['ece'], '.4f')} | "
                f"{_num(v['calibrated']['ece'], '.4f')} |"
            )
    if r.get("dex"):
        d = r["dex"]
        lines += [
            "",
            f"**Age in years, regression head vs DEX expectation**: int8 MAE {_num(d['regression_mae'])} vs "
            f"{_num(d['dex_mae'])} y; float {_num(d['float_regression_mae'])} vs {_num(d['float_dex_mae'])} y.",
        ]
    if r.get("flip"):
        fl = r["flip"]

        def _gains(d: dict[str, Any]) -> str:
            return ", ".join(f"{k} {_num(v['plain'], '.4f')} → {_num(v['flip'], '.4f')}" for k, v in d.items())

        lines += [
            "",
            "**Test-time flip** (int8, plain → flip): "
            + _gains({k: v for k, v in fl.items() if k != "per_source"})
            + ".",
        ]
        lines += [f"- {src}: {_gains(d)}." for src, d in fl.get("per_source", {}).items()]
    sz, lat = r["size_bytes"], r["latency_ms_median_1thread"]
    lines += [
        "",
        f"Size: float {sz['float'] / 1e6:.2f} MB, quantized {sz['quant'] / 1e6:.2f} MB. "
        f"Latency per face ({r['runtime']}, 1 thread, median): quantized "
        f"{lat['quant']:.3f} ms" + (f", float {lat['float']:.3f} ms" if lat.get("float") else "") + ".",
        "",
    ]
    if r.get("skipped"):
        lines.append("Skipped inputs: " + ", ".join(f"{n} {k}" for k, n in r["skipped"].items()) + ".")
    return "\n".join(lines) + "\n"


def extra_plots(r: dict[str, Any], out: Path) -> list[Path]:
    """The framing sweep (accuracy per head against the crop margin) and the reliability diagrams."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    rows = [x for x in r.get("framing", []) if x["dx"] == 0 and x["dy"] == 0]
    if rows:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ms = [x["margin"] for x in rows]
        for key, label in (("gender_acc", "gender"), ("race_acc", "race"), ("age_acc", "age group")):
            if rows[0].get(key) is not None:
                ax.plot(ms, [x[key] * 100 for x in rows], marker="o", label=label)
        ax.axvline(r.get("crop_margin", 0), color="grey", ls="--", lw=1)
        ax.axvspan(-0.10, 0.15, color="grey", alpha=0.08)
        ax.set_xlabel("crop margin per side (detector box)")
        ax.set_ylabel("accuracy %")
        ax.set_title("Framing sweep (int8, device path)")
        ax.legend()
        fig.tight_layout()
        p = out / "framing_sweep.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    cal = r.get("calibration", {})
    if cal:
        fig, axes = plt.subplots(1, len(cal), figsize=(3.3 * len(cal), 3.3))
        for ax, (h, v) in zip(axes if len(cal) > 1 else [axes], cal.items(), strict=False):
            for which, style in (("raw", "o--"), ("calibrated", "s-")):
                b = v[which]["bins"]
                ax.plot(
                    [x["confidence"] for x in b],
                    [x["accuracy"] for x in b],
                    style,
                    label=f"{which} (ECE {_num(v[which]['ece'], '.3f')})",
                )
            ax.plot([0, 1], [0, 1], color="grey", lw=1)
            ax.set_title(f"{h} (T = {v['temperature']:.2f})", fontsize=9)
            ax.set_xlabel("confidence")
            ax.set_ylabel("accuracy")
            ax.legend(fontsize=7)
        fig.tight_layout()
        p = out / "reliability.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    return written


def plots(r: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    written = []
    for h, labels in _HEADS.items():
        if f"{h}_confusion" not in r["quant"] or r["quant"].get(f"{h}_acc") is None:
            continue  # no sample of this data carries the head's label (All-Age-Faces has no race)
        fig, axes = plt.subplots(1, 2, figsize=(4 + len(labels) * 1.2, 2.5 + len(labels) * 0.5))
        for ax, which in zip(axes, ("float", "quant"), strict=False):
            cm = np.array(r[which][f"{h}_confusion"], float)
            norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
            ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
            ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
            ax.set_yticks(range(len(labels)), labels, fontsize=8)
            for i in range(len(labels)):
                for j in range(len(labels)):
                    ax.text(
                        j,
                        i,
                        int(cm[i, j]),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
            ax.set_title(f"{h} — {which} ({r[which][h + '_acc'] * 100:.1f}%)", fontsize=9)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
        fig.tight_layout()
        p = out / f"confusion_{h}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    by = r["quant"].get("gender_acc_by_race", {})
    if by:
        races = list(by)
        fig, ax = plt.subplots(figsize=(6, 3.2))
        x = np.arange(len(races))
        ax.bar(x - 0.2, [r["float"]["gender_acc_by_race"][k]["acc"] * 100 for k in races], 0.4, label="float")
        ax.bar(x + 0.2, [by[k]["acc"] * 100 for k in races], 0.4, label="quantized")
        ax.set_xticks(x, [f"{k}\n(n={by[k]['n']})" for k in races])
        ax.set_ylabel("gender accuracy %")
        ax.set_ylim(max(0, min(by[k]["acc"] for k in races) * 100 - 10), 100)
        ax.legend()
        ax.set_title("Gender accuracy by race group")
        fig.tight_layout()
        p = out / "gender_by_race.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    return written


def write_report(r: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(r, indent=2) + "\n")
    (out / "summary.md").write_text(markdown(r))
    return [out / "report.json", out / "summary.md", *plots(r, out), *extra_plots(r, out)]
