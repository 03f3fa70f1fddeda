"""A quick bench on a tiny bundle: one row per backend x precision, reasons for the unusable ones."""

from __future__ import annotations

import importlib.util
import json

import pytest

from edgecalc.bench.report import COLUMNS, COMPACT_COLUMNS, compact_cells, markdown, print_table
from edgecalc.bench.results import BenchReport, Row
from edgecalc.bench.run import BenchOptions, run_bench
from edgecalc.bench.timing import LatencyStats


def test_latency_stats_percentiles():
    s = LatencyStats.from_ms(list(range(1, 101)))
    assert s.n == 100 and s.min == 1 and s.max == 100
    assert s.median == pytest.approx(50.5) and s.p99 == pytest.approx(99.01)
    with pytest.raises(ValueError):
        LatencyStats.from_ms([])


def test_quick_bench_table(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECALC_CACHE_DIR", str(tmp_path / "cache"))
    bundle, weights = tiny_bundle
    report = run_bench(BenchOptions(bundle=bundle, n_data=6, batches=(1, 2), n=5, warmup=1, threads=1,
                                    weights=weights, out=tmp_path / "out"), log=lambda m: None)
    labels = [r.label for r in report.rows]
    assert len(labels) == len(set(labels))
    expected_ok = {"pytorch fp32 (cpu)", "torchscript fp32 (cpu)", "onnxruntime fp32 (cpu)", "onnxruntime int8 (cpu)"}
    if importlib.util.find_spec("openvino") is not None:
        expected_ok |= {"openvino fp32 (cpu)", "openvino int8 (cpu)"}
    ok = {r.label for r in report.rows if r.status == "ok"}
    assert expected_ok <= ok, [(r.label, r.status, r.reason) for r in report.rows]
    assert report.reference == "pytorch fp32 (cpu)"
    for r in report.rows:
        if r.status == "ok":
            lat = r.result["model_latency_ms"]
            assert set(lat) == {"1", "2"} and all(v["n"] == 5 and v["median"] > 0 for v in lat.values())
            assert r.result["peak_rss_mb"] > 0
            assert 0.0 <= r.derived["decision_agreement"] <= 1.0
            assert r.derived["ratio_to_reference"] > 0
            assert r.derived["pct_of_peak"]["1"] > 0
            assert r.reason == "", (r.label, r.reason)  # a row that ran carries no reason
        else:
            assert r.reason, r.label  # an unusable row says why
    ref = next(r for r in report.rows if r.label == "pytorch fp32 (cpu)")
    assert ref.derived["ratio_to_reference"] == pytest.approx(1.0)
    assert ref.derived["decision_agreement"] == 1.0
    ort = next(r for r in report.rows if r.label == "onnxruntime fp32 (cpu)")
    # each row's RSS is its own process's (torch alone outweighs onnxruntime and the tiny model)
    assert ort.result["peak_rss_mb"] < ref.result["peak_rss_mb"]
    ts = next(r for r in report.rows if r.label == "torchscript fp32 (cpu)")
    assert ts.derived["max_abs_score_diff"] < 1e-4
    trt = [r for r in report.rows if r.backend == "tensorrt"]
    assert trt and all(r.status == "unavailable" and "engine" in r.reason for r in trt)
    md = (tmp_path / "out" / "bench.md").read_text()
    assert md == markdown(report)
    table = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert table[0] == "| " + " | ".join(COLUMNS) + " |"
    assert len(table) == 1 + len(report.rows)
    data = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert len(data["rows"]) == len(report.rows) and data["peak_gflops"] > 0
    cache = json.loads((tmp_path / "cache" / "backend-latency.json").read_text())
    assert any("onnxruntime/fp32/cpu" in v for m in cache.values() for v in m.values())


def _ok_row(backend: str, precision: str, device: str, median: float) -> Row:
    lat = {"1": {"median": median, "p99": median * 1.7, "n": 200}, "4": {"median": median * 3.1, "p99": median * 4, "n": 200}}
    result = {"model_latency_ms": lat, "throughput_ips": {"1": 1000 / median, "4": 4000 / (median * 3.1)},
              "e2e_latency_ms": {"median": median + 0.4}, "load_ms": 812.0, "file_mb": 7.61, "peak_rss_mb": 431.0}
    derived = {"auc": 0.98731, "dice": 0.7712, "decision_agreement": 0.984, "ratio_to_reference": median / 12.3456,
               "pct_of_peak": {"1": 37.25}}
    return Row(backend, precision, device, "ok", "", result, derived)


def test_terminal_table_fits_100_columns_without_breaking_a_cell():
    """`edgecalc bench` prints the compact table: no line past 100 columns, every cell whole on one line."""
    from rich.console import Console

    rows = [_ok_row("pytorch", "fp32", "cpu", 12.3456), _ok_row("pytorch", "fp16+cudagraph", "cuda", 0.8123),
            _ok_row("torchscript", "fp32", "cpu", 11.02), _ok_row("onnxruntime", "int8", "cpu", 4321.5),
            _ok_row("openvino", "bf16", "cpu", 3.25),
            Row("tensorrt", "int8", "cuda", "unavailable",
                "the bundle has no TensorRT engine (edgecalc export ... --engine on a GPU); tensorrt not installed; "
                "cuda-python not installed; no GPU (nvidia-smi not found)"),
            Row("openvino", "int8", "cpu", "failed", "RuntimeError: Exception from src/inference/src/cpp/core.cpp:121")]
    report = BenchReport(machine={"cpu": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz with a long name", "cores": 2,
                                  "gpu": None}, bundle="bundle", model={}, data={"source": "phantom", "n": 64},
                         options={}, peak_gflops=101.5, flops_per_image=1.2e9, reference="pytorch fp32 (cpu)", rows=rows)
    console = Console(width=100, record=True, color_system=None)
    print_table(report, console)
    lines = console.export_text().splitlines()
    assert max(len(ln) for ln in lines) <= 100, "\n".join(ln for ln in lines if len(ln) > 100)
    header = next(ln for ln in lines if "backend" in ln and "AUC" in ln)
    assert all(c in header for c in COMPACT_COLUMNS)
    for r in rows:
        cells = compact_cells(r)
        line = next((ln for ln in lines if ln.split()[:1] == [r.backend] and all(c in ln for c in cells)), None)
        assert line is not None, (cells, lines)  # the whole row on one line: no cell wrapped or cut
    # each row that did not run says why, in full, below the table (wrapped between words)
    text = " ".join(" ".join(lines).split())
    assert all(f"{r.label} {r.status}: {' '.join(r.reason.split())}" in text for r in rows if r.status != "ok")


def test_locator_cadence_picks_the_largest_k_that_keeps_box_and_crop_quality():
    from edgecalc.bench.locator_cadence import pick_k

    def row(drift, k, iou, holds):
        return {"drift_mm_per_frame": drift, "k": k, "mean_box_iou": iou, "crop_holds_nodule_share": holds}

    rows = [row(0.1, 1, 0.90, 1.0), row(0.1, 5, 0.895, 1.0), row(0.1, 10, 0.905, 1.0), row(0.1, 20, 0.85, 1.0),
            row(0.3, 1, 0.88, 0.95), row(0.3, 5, 0.88, 0.94), row(0.3, 10, 0.89, 0.90), row(0.3, 20, 0.88, 0.95)]
    # k=10 loses 0.05 crop-holds on the fast sweep, k=20 loses 0.05 IoU on the slow one
    assert pick_k(rows) == 5
    assert pick_k(rows, holds_tolerance=0.1) == 10


def test_crop_cost_of_the_locator_scores_the_same_frames_for_every_crop():
    """`crop_margin --locator`: true box, locator box and extent are scored on the same found frames."""
    from edgecalc.bench.crop_margin import locator_rows

    rows = locator_rows(8)
    assert [r["crop"] for r in rows] == ["true box", "locator box", "locator extent"]
    assert len({(r["found"], r["positives"]) for r in rows}) == 1
    assert 6 <= rows[0]["found"] <= 8 and 0 < rows[0]["positives"] < rows[0]["found"]
    assert all(0.0 <= r["auc"] <= 1.0 and 0.0 <= r["accuracy"] <= 1.0 for r in rows)


def test_dice_only_where_the_data_has_masks(tiny_bundle, tmp_path, monkeypatch):
    """Real crops with case labels have no pixel masks: the bench must not score masks against empty ones."""
    import cv2
    import numpy as np

    monkeypatch.setenv("EDGECALC_CACHE_DIR", str(tmp_path / "cache"))
    bundle, weights = tiny_bundle
    rng = np.random.default_rng(0)
    data = tmp_path / "crops"
    (data / "images").mkdir(parents=True)
    rows = ["id,calcification"]
    for i in range(6):
        cv2.imwrite(str(data / "images" / f"c{i}.png"), rng.integers(0, 255, (40, 40), dtype=np.uint8))
        rows.append(f"c{i},{i % 2}")
    (data / "labels.csv").write_text("\n".join(rows) + "\n")

    def dice_of(folder):
        report = run_bench(BenchOptions(bundle=bundle, backends=("onnxruntime",), data=folder, batches=(1,), n=2,
                                        warmup=0, threads=1, weights=weights, out=tmp_path / "out"), log=lambda m: None)
        return {r.label: r.derived.get("dice") for r in report.rows if r.status == "ok"}

    without = dice_of(data)
    assert without and all(v is None for v in without.values()), without
    (data / "masks").mkdir()
    mask = np.zeros((40, 40), np.uint8)
    mask[10:20, 10:20] = 255
    cv2.imwrite(str(data / "masks" / "c1.png"), mask)  # one positive with a mask: Dice exists again
    with_mask = dice_of(data)
    assert with_mask and all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in with_mask.values()), with_mask
