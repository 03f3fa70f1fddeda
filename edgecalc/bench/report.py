"""The benchmark as a table on the terminal (Ultralytics `benchmark` style), JSON and Markdown."""

from __future__ import annotations

from pathlib import Path

from edgecalc.atomic import atomic_write_json, atomic_write_text
from edgecalc.bench.results import BenchReport, Row

COLUMNS = ("backend", "precision", "device", "status", "size MB", "load ms", "median ms", "p99 ms",
           "e2e ms", "img/s", "GPU ms", "RSS MB", "AUC", "Dice", "agree", "x ref", "% peak")


def _f(v, fmt: str = "{:.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def row_cells(r: Row) -> list[str]:
    """One table row; unusable rows carry their reason in the status column."""
    if r.status != "ok":
        return [r.backend, r.precision, r.device, f"{r.status}: {r.reason}"] + ["-"] * (len(COLUMNS) - 4)
    res, d = r.result, r.derived
    lat = res["model_latency_ms"]
    b1 = lat.get("1") or next(iter(lat.values()))
    thr = " / ".join(f"{b}:{v:.0f}" for b, v in res["throughput_ips"].items())
    gpu = res.get("gpu_compute_ms") or {}
    peak = d.get("pct_of_peak", {})
    return [r.backend, r.precision, r.device, "ok", _f(res.get("file_mb"), "{:.2f}"), _f(res["load_ms"], "{:.0f}"),
            _f(b1["median"], "{:.2f}"), _f(b1["p99"], "{:.2f}"), _f(res["e2e_latency_ms"]["median"], "{:.2f}"),
            thr, _f((gpu.get("1") or {}).get("median"), "{:.3f}"), _f(res.get("peak_rss_mb"), "{:.0f}"),
            _f(d.get("auc"), "{:.4f}"), _f(d.get("dice"), "{:.4f}"), _f(d.get("decision_agreement"), "{:.3f}"),
            _f(d.get("ratio_to_reference"), "{:.2f}"), _f(peak.get("1"), "{:.1f}")]


def markdown(report: BenchReport) -> str:
    m = report.machine
    lines = [
        f"# edgecalc bench: {report.model.get('preset', '?')} preset, input {report.model.get('config', {}).get('input_size', '?')}",
        "",
        f"- machine: {m['cpu']}, {m['cores']} logical cores, GPU: {m['gpu'] or 'none'}",
        f"- bundle: `{report.bundle}`; data: {report.data['source']} (n = {report.data['n']})",
        f"- measured float32 GEMM peak: {report.peak_gflops:.1f} GFLOP/s; model: "
        + (f"{report.flops_per_image / 1e9:.3f} GFLOP per image" if report.flops_per_image else "FLOPs unknown"),
        f"- reference row (x ref = median latency / reference's, batch 1): {report.reference or 'none'}",
        f"- timed calls per row: {report.options['n']} after {report.options['warmup']} warm-up; "
        f"threads: {report.options['threads'] or 'engine default'}; batches: {report.options['batches']}",
        "- latencies are of the model call alone (median / p99, batch 1); e2e = preprocess + call + post-process "
        "(batch 1); img/s = throughput per batch size; % peak = the compute floor at the measured float32 GEMM "
        "peak / median (INT8 and BF16 rows can pass 100 %: they run on int8/bf16 units faster than that peak)",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for r in report.rows:
        lines.append("| " + " | ".join(c.replace("|", "/") for c in row_cells(r)) + " |")
    return "\n".join(lines) + "\n"


#: The terminal's table: what fits 100 columns. The full table (``COLUMNS``) is in bench.md / bench.json.
COMPACT_COLUMNS = ("backend", "precision", "p50 ms", "p99 ms", "img/s", "x ref", "% peak", "AUC")


def compact_cells(r: Row) -> list[str]:
    """One row of the terminal table: batch-1 latency, best throughput, ratio, % of peak, AUC."""
    precision = r.precision if r.device == "cpu" else f"{r.precision} {r.device}"
    if r.status != "ok":
        return [r.backend, precision, r.status] + ["-"] * (len(COMPACT_COLUMNS) - 3)
    res, d = r.result, r.derived
    lat = res["model_latency_ms"]
    b1 = lat.get("1") or next(iter(lat.values()))
    best = max(res["throughput_ips"].values()) if res.get("throughput_ips") else None
    return [r.backend, precision, _f(b1["median"], "{:.2f}"), _f(b1["p99"], "{:.2f}"), _f(best, "{:.0f}"),
            _f(d.get("ratio_to_reference"), "{:.2f}"), _f(d.get("pct_of_peak", {}).get("1"), "{:.1f}"),
            _f(d.get("auc"), "{:.3f}")]


def print_table(report: BenchReport, console=None) -> None:
    """The compact table (fits 100 columns), then why each row that did not run did not."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    t = Table(title=f"edgecalc bench, ref = {report.reference or 'none'}", title_justify="left", box=box.SIMPLE_HEAD)
    for i, c in enumerate(COMPACT_COLUMNS):
        t.add_column(c, no_wrap=True, justify="left" if i < 2 else "right")
    for r in report.rows:
        t.add_row(*(escape(c) for c in compact_cells(r)))
    console.print(t)
    console.print("batch 1; img/s = the best batch; x ref = median latency / the reference's; the full table: bench.md")
    for r in report.rows:
        if r.status != "ok":
            console.print(f"{escape(r.label)} {r.status}: {escape(r.reason)}")


def write_reports(report: BenchReport, out: Path) -> tuple[Path, Path]:
    """`out/bench.json` and `out/bench.md`, written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    j, md = out / "bench.json", out / "bench.md"
    atomic_write_json(j, report.to_dict())
    atomic_write_text(md, markdown(report))
    return j, md
