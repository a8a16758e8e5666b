"""Turn one benchmark run (the JSON that run.py writes) into the markdown table, the target
check and the chart. `python -m bench.report bench/results/X.json` redraws from a file."""

import json
import sys
from pathlib import Path
from typing import Any

READS = ("get_by_id", "by_name", "search")
LABELS = {
    "get_by_id": "GET /books/{id}",
    "by_name": "GET /books?name=",
    "search": "GET /books?q=",
    "create": "POST /books",
    "update": "PATCH /books/{id}",
}
COLOURS = {"ours": "#1f77b4", "tutorial": "#d62728", "hello": "#7f7f7f"}


def progress_line(r: dict[str, Any]) -> str:
    return (
        f"  {r['workload']:9} c={r['concurrency']:<3} {r['target']:8} {r['rps']:9.0f} req/s "
        f"p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:7.2f} ms  errors {r['errors']}  "
        f"cpu {r['server_cpu_pct']:5.0f}%  wrk {r['wrk_cpu_pct']:3.0f}%"
        + ("  STALLED" if r.get("stalled") else "")
    )


def _errors(r: dict[str, Any]) -> str:
    return f"{r['errors']} (stalled)" if r.get("stalled") else str(r["errors"])


def _index(data: dict[str, Any]) -> dict[tuple[str, int, str], dict[str, Any]]:
    return {(r["workload"], r["concurrency"], r["target"]): r for r in data["runs"]}


def _ratio(
    runs: dict[tuple[str, int, str], dict[str, Any]], w: str, c: int, ref: str
) -> float | None:
    ours, other = runs.get((w, c, "ours")), runs.get((w, c, ref))
    if not ours or not other or not other["rps"]:
        return None
    return float(ours["rps"] / other["rps"])


def check_targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    runs = _index(data)
    checks: list[dict[str, Any]] = []

    def add(
        name: str, value: float | None, limit: float, higher_is_better: bool, unit: str
    ) -> None:
        ok = value is not None and (value >= limit if higher_is_better else value <= limit)
        sign = ">=" if higher_is_better else "<="
        checks.append({"target": name, "value": value, "limit": f"{sign} {limit}{unit}", "met": ok})

    add("by_name c=16 vs tutorial", _ratio(runs, "by_name", 16, "tutorial"), 10, True, "x")
    add("by_name c=16 vs hello", _ratio(runs, "by_name", 16, "hello"), 0.75, True, "x")
    add("create c=16 vs tutorial", _ratio(runs, "create", 16, "tutorial"), 8, True, "x")
    for w in READS:
        r = runs.get((w, 16, "ours"))
        add(f"{w} c=16 p99", r["p99_ms"] if r else None, 15, False, " ms")
    ours_errors = sum(r["errors"] for r in data["runs"] if r["target"] == "ours")
    add("errors, ours, every run", ours_errors, 0, False, "")
    ours_start = data["startup"].get("ours", {})
    idle = [w["rss_mb"] for w in ours_start.get("idle", {}).get("workers", [])]
    add("idle RSS per worker", max(idle) if idle else None, 80, False, " MB")
    add("cold start to ready", ours_start.get("cold_start_median_s"), 1.5, False, " s")
    return checks


def markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    cfg = data["config"]
    lines = [
        f"Run {data['date']} at {data['sha']} on {m['cpu']}, {m['cpus']} CPUs, "
        f"{m['memory_gb']} GB, Linux {m['kernel']}, Python {m['python']}, "
        f"PostgreSQL {m['postgresql']}, {m['wrk']} (1 thread). "
        f"{cfg['duration_s']} s per run after a {cfg['warmup_s']} s warm-up; "
        f"{cfg['books']} books seeded.",
        "",
        "| workload | conns | target | req/s | p50 ms | p99 ms | errors "
        "| server RSS MB | server CPU % |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["runs"]:
        lines.append(
            f"| {LABELS[r['workload']]} | {r['concurrency']} | {r['target']} | {r['rps']:,.0f} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {_errors(r)} | {r['server_rss_mb']:.0f} | "
            f"{r['server_cpu_pct']:.0f} |"
        )
    lines += _ratio_table(data)
    lines += _pgbench_table(data)
    lines += _startup_table(data)
    lines += ["", "| target | value | limit | met |", "|---|---:|---|---|"]
    for c in data["targets"]:
        value = "n/a" if c["value"] is None else f"{c['value']:.2f}"
        lines.append(f"| {c['target']} | {value} | {c['limit']} | {_met(c)} |")
    return "\n".join(lines) + "\n"


def _met(check: dict[str, Any]) -> str:
    if check["value"] is None:
        return "not measured"  # a workload or target left out of this run
    return "yes" if check["met"] else "**no**"


def _ratio_table(data: dict[str, Any]) -> list[str]:
    runs = _index(data)
    lines = ["", "| workload | conns | ours ÷ tutorial | ours ÷ hello |", "|---|---:|---:|---:|"]
    for w in LABELS:
        for c in data["config"]["concurrency"]:
            if (w, c, "ours") not in runs:
                continue
            t, h = _ratio(runs, w, c, "tutorial"), _ratio(runs, w, c, "hello")
            fmt = lambda x: "n/a" if x is None else f"{x:.2f}×"  # noqa: E731
            stalled = runs.get((w, c, "tutorial"), {}).get("stalled")
            note = " (tutorial stalled)" if stalled else ""
            t = None if stalled else t  # a ratio to a hung server means nothing
            lines.append(f"| {LABELS[w]} | {c} | {fmt(t)}{note} | {fmt(h)} |")
    return lines


def _pgbench_table(data: dict[str, Any]) -> list[str]:
    if not data.get("pgbench"):
        return []
    runs = _index(data)
    lines = [
        "",
        "| pgbench (same SQL) | clients | tps | avg latency ms | failed | ours req/s ÷ tps |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for p in data["pgbench"]:
        ours = runs.get((p["workload"], p["concurrency"], "ours"))
        share = f"{ours['rps'] / p['tps']:.2f}" if ours and p["tps"] else "n/a"
        lines.append(
            f"| {LABELS[p['workload']]} | {p['concurrency']} | {p['tps']:,.0f} | "
            f"{p['latency_avg_ms']:.2f} | {p['failed']} | {share} |"
        )
    return lines


def _startup_table(data: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "| target | cold start to ready (median) | workers | idle RSS per worker MB "
        "| idle USS per worker MB | RSS after load MB (total) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in data["startup"].items():
        workers = s["idle"]["workers"]
        rss = "/".join(f"{w['rss_mb']:.0f}" for w in workers)
        uss = "/".join(f"{w['uss_mb']:.0f}" for w in workers)
        after = s.get("after_load", {}).get("total_rss_mb", float("nan"))
        cold = s["cold_start_median_s"]
        lines.append(f"| {name} | {cold:.2f} s | {len(workers)} | {rss} | {uss} | {after:.0f} |")
    return lines


def chart(data: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = _index(data)
    workloads = [w for w in LABELS if any(k[0] == w for k in runs)]
    targets = [t for t in COLOURS if any(k[2] == t for k in runs)]
    concurrency = data["config"]["concurrency"]
    pgbench = {(p["workload"], p["concurrency"]): p["tps"] for p in data.get("pgbench", [])}
    fig, axes = plt.subplots(2, len(workloads), figsize=(4 * len(workloads), 7), squeeze=False)
    width = 0.8 / len(targets)
    for col, w in enumerate(workloads):
        for row, (metric, title) in enumerate((("rps", "req/s"), ("p99_ms", "p99 ms"))):
            ax = axes[row][col]
            for i, t in enumerate(targets):
                xs = [j + (i - (len(targets) - 1) / 2) * width for j in range(len(concurrency))]
                cells = [runs.get((w, c, t), {}) for c in concurrency]
                ys = [0 if r.get("stalled") else r.get(metric, 0) for r in cells]
                ax.bar(xs, ys, width, label=t, color=COLOURS[t])
                for x, r in zip(xs, cells, strict=True):
                    if r.get("stalled"):  # no number to draw: say why the bar is missing
                        ax.annotate(
                            "stalled",
                            (x, 0),
                            xycoords=("data", "axes fraction"),
                            rotation=90,
                            ha="center",
                            va="bottom",
                            fontsize=7,
                            color=COLOURS[t],
                        )
            if metric == "rps" and any((w, c) in pgbench for c in concurrency):
                ax.plot(
                    range(len(concurrency)),
                    [pgbench.get((w, c), float("nan")) for c in concurrency],
                    "k--o",
                    markersize=4,
                    label="pgbench (DB ceiling)",
                )
            if metric == "p99_ms":
                ax.set_yscale("log")
            ax.set_xticks(range(len(concurrency)), [f"c={c}" for c in concurrency])
            ax.set_title(f"{LABELS[w]}: {title}", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
    handles, labels = {}, {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
            labels[lab] = lab
    fig.legend(
        handles.values(),
        labels.values(),
        loc="upper center",
        ncol=len(handles),
        bbox_to_anchor=(0.5, 0.965),
    )
    m = data["machine"]
    fig.suptitle(
        f"Bookshelf vs tutorial app vs FastAPI hello-world — {data['date'][:10]}, {data['sha']}, "
        f"{m['cpus']} CPUs ({m['cpu']})",
        y=0.995,
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


if __name__ == "__main__":
    run = json.loads(Path(sys.argv[1]).read_text())
    print(markdown(run))
    source = Path(sys.argv[1])
    print(chart(run, Path(sys.argv[2]) if len(sys.argv) > 2 else source.with_suffix(".png")))
