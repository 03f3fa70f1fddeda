"""The run-folder module: names that stay as they are on disk, readers that name the file they cannot
use, writers that round-trip (atomically), a real training's folder read back by every reader, and a
scan of the package source that finds a run-folder name spelled outside ``edgecalc/run_folder.py``."""

from __future__ import annotations

import ast
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from edgecalc import run_folder as rf
from train_helpers import one_thread, tiny_config, tiny_data  # noqa: F401 (fixtures)

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "edgecalc"


def test_the_names_are_those_on_disk():
    """Run folders written since the first runs (and the background sweep now) use exactly these names."""
    assert (rf.CONFIG_FILE, rf.SPLIT_FILE, rf.METRICS_FILE, rf.FINAL_WEIGHTS) == (
        "config.json", "split.json", "metrics.json", "final.safetensors")
    assert (rf.LOG_CSV, rf.LOG_JSONL, rf.CHECKPOINT_DIR, rf.PSEUDO_DIR, rf.PSEUDO_MARKER) == (
        "log.csv", "log.jsonl", "checkpoints", "pseudo_masks", "pseudo_masks.json")
    assert (rf.EVAL_DIR, rf.SCORES_FILE, rf.END_TO_END_FILE) == ("eval", "scores.npz", "end_to_end.npz")
    assert rf.WEIGHTS_FILES == ("model.safetensors", "final.safetensors")
    run = Path("r")
    assert rf.best_weights(run, 1) == run / "stage1" / "best.safetensors"
    assert rf.last_weights(run, 2) == run / "stage2" / "last.safetensors"
    assert rf.eval_dir(run) == run / "eval"
    assert rf.checkpoint_json_name(2) == "stage2.json"
    assert rf.checkpoint_tensors_name(1, 7) == "stage1-epoch0007.safetensors"
    assert rf.checkpoint_tensors_name(1) == "stage1.safetensors"  # the name before per-epoch files
    assert Path(rf.checkpoint_tensors_name(1, 12)).match(rf.checkpoint_tensors_glob(1))


# --- readers: a clear error naming the file ------------------------------------------------------

GOOD_SPLIT = {"n": 6, "fold": 0, "folds": 3, "seed": 0, "mask_fraction": 0.5,
              "indices": {"train": [0, 1, 2], "val": [3], "test": [4, 5], "mask_draw": [1]},
              "ids": {"train": ["a", "b", "c"], "val": ["d"], "test": ["e", "f"], "mask_draw": ["b"]}}


@pytest.mark.parametrize("text, message", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "holds a JSON list, not an object"),
    (json.dumps({**GOOD_SPLIT, "n": "6"}), "lacks the data-set size 'n'"),
    (json.dumps({k: v for k, v in GOOD_SPLIT.items() if k != "indices"}), "'indices' needs lists of int"),
    (json.dumps({**GOOD_SPLIT, "indices": {**GOOD_SPLIT["indices"], "test": ["4"]}}), "bad or missing: test"),
    (json.dumps({**GOOD_SPLIT, "ids": {**GOOD_SPLIT["ids"], "mask_draw": None}}), "bad or missing: mask_draw"),
    (json.dumps({**GOOD_SPLIT, "indices": {**GOOD_SPLIT["indices"], "val": [6]}}), "outside 0..5"),
])
def test_a_malformed_split_is_named(tmp_path, text, message):
    (tmp_path / "split.json").write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        rf.read_split(tmp_path)
    assert str(tmp_path / "split.json") in str(err.value)


@pytest.mark.parametrize("text, message", [
    ("{not json", "is not valid JSON"),
    (json.dumps({"fold": 0, "folds": 5}), "lacks the data set 'data'"),
    (json.dumps({"data": "d", "folds": 5}), "lacks 'fold'"),
    (json.dumps({"data": "d", "fold": True, "folds": 5}), "lacks 'fold'"),
    (json.dumps({"data": "d", "fold": 0, "folds": "5"}), "lacks 'folds'"),
])
def test_a_malformed_config_is_named(tmp_path, text, message):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        rf.read_config(tmp_path)
    assert str(tmp_path / "config.json") in str(err.value)


@pytest.mark.parametrize("read, name", [
    (rf.read_config, "config.json"), (rf.read_split, "split.json"), (rf.read_metrics, "metrics.json"), (rf.read_scores, "scores.npz"),
    (rf.read_end_to_end, "end_to_end.npz"), (rf.read_log, "log.jsonl"), (rf.read_pseudo_marker, "pseudo_masks.json"),
])
def test_a_missing_file_is_named(tmp_path, read, name):
    with pytest.raises(FileNotFoundError, match="not found") as err:
        read(tmp_path)
    assert str(tmp_path / name) in str(err.value)


def test_missing_final_weights_say_how_to_finish_the_run(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        rf.final_weights(tmp_path)
    assert str(tmp_path / "final.safetensors") in str(err.value) and f"--resume {tmp_path}" in str(err.value)


@pytest.mark.parametrize("read, name", [(rf.read_metrics, "metrics.json"), (rf.read_pseudo_marker, "pseudo_masks.json")])
def test_a_malformed_json_file_is_named(tmp_path, read, name):
    (tmp_path / name).write_bytes(b"\xff\xfe{")
    with pytest.raises(ValueError, match="is not valid JSON") as err:
        read(tmp_path)
    assert str(tmp_path / name) in str(err.value)


def test_a_bad_log_line_is_named(tmp_path):
    (tmp_path / "log.jsonl").write_text('{"stage": 1}\n[3]\n')
    with pytest.raises(ValueError, match="line 2 holds a JSON list") as err:
        rf.read_log(tmp_path)
    assert str(tmp_path / "log.jsonl") in str(err.value)


def _npz(path: Path, **arrays) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"PK\x03\x04 cut short"), "is not a readable .npz file"),
    (lambda p: p.write_bytes(b""), "is not a readable .npz file"),
    (lambda p: _npz(p, ids=np.array(["a"]), labels=np.array([1])), "lacks scores"),
    (lambda p: _npz(p, ids=np.array(["a", "b"]), labels=np.array([1, 0]), scores=np.array([0.5])), "of one length"),
    (lambda p: _npz(p, ids=np.array(["a"]), labels=np.array([1]), scores=np.array([[0.5]])), "of one length"),
    (lambda p: _npz(p, ids=np.array([{"x": 1}], dtype=object), labels=np.array([1]), scores=np.array([0.5])),
     "is not a readable .npz file"),  # an object array needs pickle: refused
])
def test_malformed_scores_are_named(tmp_path, make, message):
    make(tmp_path / "scores.npz")
    with pytest.raises(ValueError, match=message) as err:
        rf.read_scores(tmp_path)
    assert str(tmp_path / "scores.npz") in str(err.value)


# --- writers: round trips, atomic -----------------------------------------------------------------

def test_every_writer_round_trips(tmp_path):
    rf.write_split(tmp_path, GOOD_SPLIT)
    assert rf.read_split(tmp_path) == GOOD_SPLIT
    metrics = {"test": {"auc": 0.75, "confusion_matrix": [[1, 2], [3, 4]]}, "weights": rf.FINAL_WEIGHTS}
    rf.write_metrics(tmp_path, metrics)
    assert rf.read_metrics(tmp_path) == metrics
    marker = {"count": 3, "threshold": 0.5, "from": "stage1/best.safetensors"}
    rf.write_pseudo_marker(tmp_path, marker)
    assert rf.pseudo_masks_done(tmp_path) and rf.read_pseudo_marker(tmp_path) == marker

    ids, labels, scores = ["a", "b", "c"], np.array([1, 0, 1]), np.array([0.9, 0.2, 0.4], np.float32)
    rf.write_scores(tmp_path / "eval", ids, labels, scores)  # the folder is made
    got = rf.read_scores(tmp_path / "eval")
    assert sorted(got) == ["ids", "labels", "scores"]
    assert got["ids"].tolist() == ids and np.array_equal(got["labels"], labels) and np.array_equal(got["scores"], scores)
    rf.write_scores(tmp_path / "rule", ids, labels, scores, predictions=np.array([1, 0, 0]))
    assert rf.read_scores(tmp_path / "rule")["predictions"].tolist() == [1, 0, 0]

    found, iou = np.array([True, False, True]), np.array([0.8, 0.0, 0.3])
    rf.write_end_to_end(tmp_path, ids, labels, scores, found, iou)
    e2e = rf.read_end_to_end(tmp_path)
    assert e2e["found"].tolist() == found.tolist() and np.array_equal(e2e["iou"], iou) and e2e["ids"].tolist() == ids

    rows = [{"stage": 1, "epoch": 1, "lr": 0.001234567, "val_auc": None, "extra": "kept in jsonl"},
            {"stage": 2, "epoch": 1, "lr": 5e-05, "val_auc": 0.5}]
    rf.write_logs(tmp_path, rows, ("stage", "epoch", "lr", "val_auc"))
    assert rf.read_log(tmp_path) == rows
    assert list(csv.DictReader((tmp_path / "log.csv").open())) == [
        {"stage": "1", "epoch": "1", "lr": "0.00123457", "val_auc": ""}, {"stage": "2", "epoch": "1", "lr": "5e-05", "val_auc": "0.5"}]
    assert not list(tmp_path.rglob("*.tmp*")), "temporary files left behind"


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    rf.write_scores(tmp_path, ["a"], np.array([1]), np.array([0.5]))
    with pytest.raises(ValueError, match="different lengths"):
        rf.write_scores(tmp_path, ["a", "b"], np.array([1, 0]), np.array([0.5]))

    def dies_half_way(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        rf.write_scores(tmp_path, ["b"], np.array([0]), np.array([0.1]))
    monkeypatch.undo()
    assert rf.read_scores(tmp_path)["ids"].tolist() == ["a"]
    assert not list(tmp_path.glob("*.tmp*"))


def test_the_module_imports_without_torch():
    """Eval and export tools read run folders on machines without training code; the module needs numpy only."""
    import subprocess
    import sys

    code = "import sys; sys.modules['torch'] = None; import edgecalc.run_folder; print('ok')"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_run_state_from_the_files_present(tmp_path):
    assert not rf.holds_run(tmp_path) and not rf.is_finished(tmp_path) and rf.weights_in(tmp_path) is None
    (tmp_path / "config.json").write_text("{}")
    assert rf.holds_run(tmp_path) and not rf.is_finished(tmp_path)
    (tmp_path / "final.safetensors").write_bytes(b"")
    assert not rf.is_finished(tmp_path), "final weights without metrics.json: the test-fold evaluation did not finish"
    assert rf.weights_in(tmp_path) == tmp_path / "final.safetensors"
    (tmp_path / "metrics.json").write_text("{}")
    assert rf.is_finished(tmp_path) and rf.final_weights(tmp_path) == tmp_path / "final.safetensors"
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert rf.weights_in(tmp_path) == tmp_path / "model.safetensors"  # WEIGHTS_FILES order


# --- a real run folder, read back by every reader -------------------------------------------------

@pytest.fixture(scope="module")
def real_run(tiny_data, tmp_path_factory):
    from edgecalc.train.run import run_training

    run = tmp_path_factory.mktemp("runs") / "tiny"
    run_training(tiny_config(tiny_data), run)
    return run


def test_a_real_run_folder_reads_back_through_every_reader(real_run):
    from edgecalc.export.weights_source import resolve_weights
    from edgecalc.train.checkpoint import checkpoint_json
    from edgecalc.train.config import TrainConfig

    run = real_run
    assert rf.holds_run(run) and rf.is_finished(run)
    cfg = TrainConfig.read(run / rf.CONFIG_FILE)
    plain = rf.read_config(run)
    assert (plain["data"], plain["fold"], plain["folds"]) == (cfg.data, cfg.fold, cfg.folds)
    split = rf.read_split(run)
    assert split["n"] == 24 and (split["fold"], split["folds"]) == (cfg.fold, cfg.folds)
    metrics = rf.read_metrics(run)
    assert metrics["weights"] == rf.FINAL_WEIGHTS and metrics["n_test"] == len(split["indices"]["test"])
    ev = rf.read_metrics(rf.eval_dir(run))
    assert ev == metrics["test"]
    scores = rf.read_scores(rf.eval_dir(run))
    assert scores["ids"].tolist() == split["ids"]["test"] and ev["n"] == scores["labels"].size
    assert np.all((scores["scores"] >= 0) & (scores["scores"] <= 1))
    marker = rf.read_pseudo_marker(run)
    assert marker["count"] == len(split["ids"]["train"]) and run / marker["from"] == rf.best_weights(run, 1)
    assert sorted(p.stem for p in (run / rf.PSEUDO_DIR).glob("*.png")) == sorted(split["ids"]["train"])
    log = rf.read_log(run)
    assert [(r["stage"], r["epoch"]) for r in log] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for stage in (1, 2):
        assert rf.best_weights(run, stage).is_file() and rf.last_weights(run, stage).is_file()
        meta = json.loads(checkpoint_json(rf.checkpoint_dir(run), stage).read_text())
        assert meta["tensors"] == rf.checkpoint_tensors_name(stage, meta["epoch"])
        assert (rf.checkpoint_dir(run) / meta["tensors"]).is_file()
    assert rf.final_weights(run) == resolve_weights(run) == run / rf.FINAL_WEIGHTS


def test_evaluate_run_reads_the_run_through_the_module(real_run, tmp_path):
    """``edgecalc eval RUN`` finds config, split and weights by the module's names and writes the same files."""
    from edgecalc.eval.evaluate import evaluate_run

    metrics = evaluate_run(real_run, out_dir=tmp_path)
    assert rf.read_metrics(tmp_path)["auc"] == metrics["auc"]
    assert rf.read_scores(tmp_path)["ids"].tolist() == rf.read_split(real_run)["ids"]["test"]


def test_a_run_evaluated_on_its_own_data_folder_is_flagged_optimistic(real_run, tiny_data, tmp_path):
    """``edgecalc eval RUN --data ITS_DATA`` holds the run's training images: the metrics say how many."""
    from rich.console import Console

    from edgecalc.data.phantom import write_phantom_dataset
    from edgecalc.eval.evaluate import evaluate_run

    split = rf.read_split(real_run)
    console = Console(record=True, width=300)
    metrics = evaluate_run(real_run, data=tiny_data, out_dir=tmp_path / "own", console=console)
    seen = len(split["ids"]["train"]) + len(split["ids"]["val"])
    assert metrics["seen_in_fit"]["images"] == seen and "fold 0" in metrics["seen_in_fit"]["what"]
    assert f"{seen} of these {split['n']} images were used to fit these weights" in console.export_text()
    # another phantom reuses the same ids (00000, ...) but none of its images was trained on
    other = write_phantom_dataset(tmp_path / "other", n=6, positive=3, size=32, seed=11, progress=False, workers=1)
    assert "seen_in_fit" not in evaluate_run(real_run, data=other, out_dir=tmp_path / "other-eval")


# --- no run-folder name spelled outside the module ------------------------------------------------

#: Names of other contracts that happen to equal a run-folder name, by the subpackage that owns them.
OTHER_CONTRACTS = {
    # the locator bundle's own training split (locator/split.py) and its training run's weights (locator/train.py)
    "edgecalc.locator": {rf.SPLIT_FILE, rf.MODEL_WEIGHTS},
    "edgecalc.runtime": {rf.LOG_JSONL},  # the live recorder's per-frame log (runtime never reads a run folder)
}


#: Folder names no other string of the package equals (unlike "eval", a command, and "stage1", a metrics key):
#: flagged wherever they stand alone.
DISTINCT_FOLDERS = {rf.CHECKPOINT_DIR, rf.PSEUDO_DIR}


def run_folder_names() -> tuple[set[str], set[str]]:
    """(file names, folder names) of a run folder, taken from the module itself (stage 1 for the per-stage ones)."""
    values = {v for k, v in vars(rf).items() if k.isupper() and isinstance(v, str)}
    files = {v for v in values if "." in v} | {rf.checkpoint_json_name(1), rf.checkpoint_tensors_name(1),
                                               rf.checkpoint_tensors_name(1, 1), rf.checkpoint_tensors_glob(1),
                                               rf.BEST_WEIGHTS, rf.LAST_WEIGHTS}
    folders = (values - files) | {rf.stage_dir(".", 1).name}
    return files, folders


def _rendered(node: ast.JoinedStr) -> str:
    """An f-string with every field rendered as the number 1 (in its format: ``{e:04d}`` -> ``0001``)."""
    out = []
    for v in node.values:
        if isinstance(v, ast.Constant):
            out.append(str(v.value))
        else:
            spec = "".join(str(s.value) for s in v.format_spec.values) if v.format_spec is not None else ""
            out.append(format(1, spec) if spec.endswith("d") else "1")
    return "".join(out)


def spelled_names(source: str, files: set[str], folders: set[str]) -> list[tuple[int, str]]:
    """(line, name) for every run-folder name in a string literal or f-string used as a path (no spaces:
    prose may mention the names): a file name as a whole path part, a folder name as the right side of
    ``/`` or as a part of an ``a/b`` literal (a ``DISTINCT_FOLDERS`` name also alone)."""
    found = []
    joined_parts = set()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            joined_parts.update(id(v) for v in node.values)
    for node in ast.walk(tree):
        text = None
        if isinstance(node, ast.JoinedStr):
            text = _rendered(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in joined_parts:
            text = node.value
        if text is not None and not any(c.isspace() for c in text):  # a path, not prose
            parts = text.split("/")
            hits = [p for p in parts if p in files or (p in folders and (len(parts) > 1 or p in DISTINCT_FOLDERS))]
            found += [(node.lineno, p) for p in hits]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            r = node.right
            text = r.value if isinstance(r, ast.Constant) and isinstance(r.value, str) else (
                _rendered(r) if isinstance(r, ast.JoinedStr) else None)
            if text in folders:
                found.append((node.lineno, text))
    return sorted(set(found))


def spelled_outside(package_dir: Path, files: set[str], folders: set[str]) -> list[str]:
    out = []
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir.parent)
        module = ".".join(rel.with_suffix("").parts)
        if module == f"{package_dir.name}.run_folder":
            continue
        allowed = set().union(*(names for owner, names in OTHER_CONTRACTS.items()
                                if module == owner or module.startswith(owner + ".")))
        out += [f"{rel}:{line}: {name!r}" for line, name in spelled_names(path.read_text(encoding="utf-8"), files, folders)
                if name not in allowed]
    return out


def test_no_run_folder_name_is_spelled_outside_the_module():
    files, folders = run_folder_names()
    assert not spelled_outside(PACKAGE_DIR, files, folders), "use edgecalc.run_folder:\n" + "\n".join(
        spelled_outside(PACKAGE_DIR, files, folders))


#: What separates the words of help prose (a name in backquotes, brackets or before a comma is still a name).
_PROSE_SEPARATORS = re.compile(r"[\s,;:()`'\"\[\]{}]+")


def spelled_in_prose(source: str, files: set[str], folders: set[str]) -> list[tuple[int, str]]:
    """(line, name) for every run-folder name in the prose of a string (help text, docstring): a file name as a
    word or a word's path part, a folder name as a part of an ``a/b`` word. An f-string field counts as a value,
    not as the name: help built from the constants passes."""
    found = []
    tree = ast.parse(source)
    joined_parts = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = _rendered(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in joined_parts:
            text = node.value
        else:
            continue
        for word in (w.rstrip(".") for w in _PROSE_SEPARATORS.split(text)):
            if word.endswith(".py"):  # a source path (edgecalc/eval/commands.py), not a run folder's
                continue
            parts = word.split("/")
            found += [(node.lineno, p) for p in parts if p in files or (p in folders and len(parts) > 1)]
    return sorted(set(found))


def spelled_in_cli_prose(cli_dir: Path, files: set[str], folders: set[str]) -> list[str]:
    return [f"{path.relative_to(cli_dir.parent.parent)}:{line}: {name!r}" for path in sorted(cli_dir.rglob("*.py"))
            for line, name in spelled_in_prose(path.read_text(encoding="utf-8"), files, folders)]


def test_no_run_folder_name_is_spelled_in_the_cli_help():
    """--help and the docstrings typer shows name the run folder's files through the constants (f-strings), so
    a renamed file cannot leave the help describing the old name."""
    files, folders = run_folder_names()
    found = spelled_in_cli_prose(PACKAGE_DIR / "cli", files, folders)
    assert not found, "build the help from edgecalc.run_folder's names:\n" + "\n".join(found)


@pytest.mark.parametrize("line, spelled", [
    ('x = typer.Option(None, help="Folder for metrics.json, roc.png; default RUN_DIR/eval")', True),
    ('x = typer.Option(None, help="Continue (with its own config.json; other options are ignored).")', True),
    ('x = typer.Option(None, help="a run folder\'s stage1/best, or `scores.npz`.")', True),
    ('def f():\n    """Writes pseudo_masks.json once every mask is on disk."""', True),
    ('x = f"the run {name} holds metrics.json"', True),
    ('x = typer.Option(None, help="Evaluate into RUN_DIR/eval/<data name>.")', True),
    # built from the names, or words that only look like them
    ('x = typer.Option(None, help=f"Folder for {METRICS_FILE}, roc.png; default RUN_DIR/{EVAL_DIR}")', False),
    ('x = typer.Option(None, help="Evaluate a run: accuracy, AUC; `edgecalc eval RUN` and the eval panel.")', False),
    ('x = typer.Option(None, help="Stage one (stage1) trains on the masks; a .safetensors file.")', False),
    ('"""The bodies live in edgecalc/train/commands.py and edgecalc/eval/commands.py."""', False),
])
def test_the_prose_scan_finds_a_name_spelled_in_help_and_only_that(line, spelled):
    files, folders = run_folder_names()
    assert bool(spelled_in_prose(line, files, folders)) is spelled, line


@pytest.mark.parametrize("line", [
    'p = run_dir / "metrics.json"',
    'p = run_dir / "eval" / "x.png"',
    'p = Path(run, "eval/scores.npz")',
    'p = run / f"stage{k}" / "w"',
    'p = ckpt / f"stage{stage}-epoch{e:04d}.safetensors"',
    'msg = f"wrote {out / \'split.json\'}"',
    'p = run / "checkpoints"',
    'PSEUDO_DIR = "pseudo_masks"',
])
def test_the_scan_finds_a_planted_name(line):
    files, folders = run_folder_names()
    assert spelled_names(line, files, folders), line


@pytest.mark.parametrize("line", [
    '@app.command("eval")\ndef f(): pass',  # a command named eval, not the folder
    'd = {"stage1": 1.5, f"stage{k}": 2}',  # keys naming a stage, not its folder
    '"""Writes ``metrics.json`` and ``eval/``."""',  # prose
    'help = "Folder for metrics.json; default RUN_DIR/eval (RUN_DIR/eval/<data name> with --data)"',
    'p = run / EVAL_DIR / SCORES_FILE',
])
def test_the_scan_leaves_other_strings_alone(line):
    files, folders = run_folder_names()
    assert not spelled_names(line, files, folders), line
