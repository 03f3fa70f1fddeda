"""Progress and result lines print user paths as typed: a folder named ``x[red]y`` must not be taken for rich
markup (which would swallow ``[red]`` and colour the rest, or raise MarkupError on ``[/red]``).

Each test runs a command (or, where a real run would take minutes, its body with the training or the
measurement replaced by a fake that writes the same files) with every user path holding ``[red]``, and
asserts the literal path appears in what it printed. Rich wraps at the terminal width, so the runner
gives a wide one: a path is then on one line.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from edgecalc import run_folder as rf
from edgecalc.cli import app

ODD = "[red]"  #: what rich would take for a colour tag
WIDE = {"COLUMNS": "2000"}


@pytest.fixture(autouse=True)
def keep_sigterm():
    """sweep and compare treat SIGTERM as Ctrl-C (they install a handler): give pytest its own back."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def invoke(*args) -> tuple[int, str]:
    res = CliRunner().invoke(app, [str(a) for a in args], env=WIDE)
    return res.exit_code, res.stdout + res.stderr


def recorded() -> Console:
    return Console(record=True, width=2000, force_terminal=False)


def printed_literally(path: Path | str, text: str) -> bool:
    return ODD in str(path) and str(path) in text


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    """A 16-crop phantom data set in a folder whose name holds markup."""
    from edgecalc.data.phantom import write_phantom_dataset

    return write_phantom_dataset(tmp_path_factory.mktemp("data") / f"set{ODD}x", n=16, positive=8, size=48, seed=3,
                                 progress=False, workers=1)


@pytest.fixture(scope="module")
def odd_bundle(tmp_path_factory) -> Path:
    """The shipped bundle, copied into a folder whose name holds markup."""
    from edgecalc.runtime.shipped import SHIPPED_BUNDLE

    return Path(shutil.copytree(SHIPPED_BUNDLE, tmp_path_factory.mktemp("b") / f"bundle{ODD}"))


def _fake_finished_run(cfg, run_dir, console=None):
    """What run_training leaves behind, as far as sweep reads it: final weights (a stand-in), metrics.json and
    eval/scores.npz."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    rf.final_weights_path(run_dir).write_bytes(b"")
    rf.write_metrics(run_dir, {"test": {"accuracy": 0.5, "sensitivity": 0.5, "specificity": 0.5, "auc": 0.5},
                               "n_masks_stage1": 1})
    rf.write_scores(rf.eval_dir(run_dir), ["a", "b", "c", "d"], np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.4, 0.6]))


# --- Train panel ---------------------------------------------------------------------------------------

def test_sweep_prints_its_run_folders_and_files_literally(monkeypatch, tmp_path):
    import edgecalc.train.run as train_run

    monkeypatch.setattr(train_run, "run_training", _fake_finished_run)
    out = tmp_path / f"sweep{ODD}out"
    code, text = invoke("sweep", tmp_path / "data", "--fractions", "0.5", "--folds", "2", "--fold-ids", "0", "--out", out)
    assert code == 0, text
    run_dir = out / "p0.5" / "fold0"
    assert printed_literally(run_dir, text) and f"training into {run_dir}" in text, text
    assert f"wrote {out / 'table1.md'}, {out / 'roc.png'}, {out / 'sweep.json'}" in text, text
    assert f"| 50% | {run_dir} |" in text, text  # the per-run table names the folder too
    code, again = invoke("sweep", tmp_path / "data", "--fractions", "0.5", "--folds", "2", "--fold-ids", "0", "--out", out)
    assert code == 0 and f"finished run {run_dir} reused" in again, again


def test_compare_prints_its_files_literally(tiny_set, tmp_path):
    out = tmp_path / f"cmp{ODD}out"
    code, text = invoke("compare", tiny_set, "--methods", "brightness", "--folds", "2", "--out", out)
    assert code == 0, text
    assert f"wrote {out / 'comparison.md'}, {out / 'roc.png'}, {out / 'scores.csv'}" in text, text


def test_compare_prints_a_training_folder_literally(monkeypatch, tmp_path):
    import edgecalc.train.run as train_run
    from edgecalc.studies import compare

    monkeypatch.setattr(train_run, "run_training", lambda cfg, run_dir, console=None: None)
    console, run_dir = recorded(), tmp_path / f"labels-only{ODD}" / "fold0"
    compare._run_trained(object(), run_dir, console)
    assert printed_literally(run_dir, console.export_text()), console.export_text()


def test_eval_prints_its_title_kinds_and_files_literally(tmp_path):
    from edgecalc.eval.evaluate import print_metrics

    metrics = {"title": f"set{ODD}x", "accuracy": 0.5, "auc": 0.5, "confusion_matrix": [[1, 1], [1, 1]], "n": 4,
               "n_positive": 2, "subgroups": {"positives_by_kind": {f"rim{ODD}": {"n": 2, "sensitivity": 0.5}}}}
    console, out = recorded(), tmp_path / f"eval{ODD}"
    print_metrics(metrics, console, out)
    text = console.export_text()
    assert f"evaluation set{ODD}x" in text and f"positives, kind rim{ODD} (n 2)" in text, text
    assert f"wrote {out / rf.METRICS_FILE}, {out / 'roc.png'}, {out / 'attention.png'}" in text, text


# --- Deploy panel ----------------------------------------------------------------------------------------

def test_bench_prints_its_files_literally(monkeypatch, tmp_path):
    import edgecalc.bench.report as report
    import edgecalc.bench.run as bench_run

    monkeypatch.setattr(bench_run, "run_bench", lambda options, log: None)  # the measurement is not what is tested
    monkeypatch.setattr(report, "print_table", lambda rep: None)
    out = tmp_path / f"bench{ODD}"
    code, text = invoke("bench", "--backends", "onnxruntime", "--out", out)
    assert code == 0, text
    assert f"written: {out / 'bench.json'}, {out / 'bench.md'}" in text, text


def _frame(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (240, 320), np.uint8)
    cv2.circle(img, (160, 120), 40, 20, -1)
    return img


def test_locate_prints_its_csv_literally(tmp_path):
    image = tmp_path / f"frame{ODD}.png"
    cv2.imwrite(str(image), _frame())
    out = tmp_path / f"boxes{ODD}.csv"
    code, text = invoke("locate", image, "--locator", "classical", "--out", out)
    assert code == 0, text
    assert f"boxes -> {out}" in text, text


def test_analyze_prints_its_bundle_and_report_literally(odd_bundle, tmp_path):
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), _frame())
    out = tmp_path / f"report{ODD}.csv"
    code, text = invoke("analyze", image, "--bundle", odd_bundle, "--backend", "onnxruntime", "--locator", "classical",
                        "--out", out)
    assert code == 0, text
    assert f"bundle {odd_bundle} " in text and f"report -> {out}" in text, text


def test_live_prints_its_source_bundle_and_snapshots_literally(odd_bundle, tmp_path):
    video = tmp_path / f"cine{ODD}.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    for k in range(3):
        writer.write(cv2.cvtColor(_frame(k), cv2.COLOR_GRAY2BGR))
    writer.release()
    snapshots = tmp_path / f"snaps{ODD}"
    code, text = invoke("live", "--source", video, "--bundle", odd_bundle, "--backend", "onnxruntime", "--headless",
                        "--max-frames", "2", "--snapshots", snapshots, "--snapshot-every", "1")
    assert code == 0, text
    assert f"bundle {odd_bundle} " in text and f"edgecalc live: file {video} " in text, text
    assert f"snapshots: {snapshots}" in text, text


def test_demo_prints_its_files_literally(tmp_path):
    out = tmp_path / f"demo{ODD}"
    code, text = invoke("demo", "--frames", "2", "--backend", "onnxruntime", "--out", out)
    assert code == 0, text
    assert f"written: {out / 'demo.mp4'}, {out / 'log.jsonl'}" in text, text


# --- Data panel ---------------------------------------------------------------------------------------

def test_import_dicom_prints_its_data_set_literally(tmp_path):
    pytest.importorskip("pydicom", reason="data import-dicom needs pydicom: pip install 'edgecalc[dicom]'")
    from edgecalc.data.phantom.dicom_writer import write_cine_dicom

    src = tmp_path / "src"
    src.mkdir()
    write_cine_dicom(src / "cine.dcm", n_frames=2, width=160, height=120)
    out = tmp_path / f"imported{ODD}"
    code, text = invoke("data", "import-dicom", src, "--out", out)
    assert code == 0, text
    assert f"-> {out};" in text and f"`edgecalc data check {out}`" in text, text
