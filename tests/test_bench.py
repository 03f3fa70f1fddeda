"""A quick bench on a tiny bundle: one row per backend x precision, reasons for the unusable ones."""

from __future__ import annotations

import importlib.util
import json

import pytest

from edgecalc.bench.report import COLUMNS, markdown
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
