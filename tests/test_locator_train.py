"""The locator's one retraining command end to end on a tiny DDTI-shaped folder of phantom frames."""

from __future__ import annotations

import json

import cv2
import pytest

pytest.importorskip("torch", reason="training the locator needs torch (the [train] extra)")

from edgecalc.data.phantom import generate_frame  # noqa: E402
from edgecalc.locator.split import group_of, make_split, read_split  # noqa: E402
from edgecalc.locator.train import main  # noqa: E402
from edgecalc.runtime.locate.learned import LearnedLocator, read_manifest  # noqa: E402


def test_split_groups_dual_window_halves():
    ids = list(range(1, 41)) + [10000 + k for k in range(20)] + [20000 + k for k in range(20)]
    split = make_split(ids, 0.2, seed=1)
    assert sorted(split["train"] + split["val"]) == sorted(ids)
    assert not {group_of(i) for i in split["train"]} & {group_of(i) for i in split["val"]}
    assert make_split(ids, 0.2, seed=1) == split


def test_split_by_patient_when_patients_are_known(tmp_path):
    from edgecalc.locator.split import read_patients, write_split

    ids = list(range(1, 61))
    patients = {i: f"P{(i - 1) // 3}" for i in ids}  # 20 patients of 3 frames each
    split = make_split(ids, 0.2, seed=2, patients=patients)
    assert not {patients[i] for i in split["train"]} & {patients[i] for i in split["val"]}
    assert 10 <= len(split["val"]) <= 15
    (tmp_path / "patients.csv").write_text("id,patient\n" + "".join(f"{i},{p}\n" for i, p in patients.items()))
    assert read_patients(tmp_path) == patients
    leaky = {"train": [1, 2, 4, 5, 6], "val": [3]}  # frame 3 is patient P0's, like 1 and 2
    write_split(tmp_path / "split.json", leaky, 0, 0.2)
    with pytest.raises(ValueError, match="same patient on both sides"):
        read_split(tmp_path / "split.json", patients)
    assert read_split(tmp_path / "split.json") == leaky  # without patients only dual-window halves are checked


@pytest.fixture(scope="module")
def tiny_locator(tmp_path_factory):
    """(tmp folder, DDTI-like root, bundle, run folder, split): a two-member locator trained for a few steps."""
    tmp_path = tmp_path_factory.mktemp("locator")
    root = tmp_path / "ddti"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k, i in enumerate((1, 2, 3, 10004, 20004)):
        f = generate_frame(50 + k, positive=False)
        cv2.imwrite(str(root / "images" / f"{i}.png"), f.image)
        cv2.imwrite(str(root / "masks" / f"{i}.png"), f.nodule_mask)
    out, run, split = tmp_path / "bundle", tmp_path / "run", tmp_path / "split.json"
    main([str(root), "--out", str(out), "--run", str(run), "--split", str(split), "--size", "32", "48",
          "--steps", "2", "3", "--batch", "2", "--phantom", "1", "--negatives", "1", "--threads", "1"])
    return tmp_path, root, out, run, split


def test_train_export_and_ship_a_tiny_locator(tiny_locator):
    tmp_path, root, out, run, split = tiny_locator
    s = read_split(split)
    assert ({10004, 20004} <= set(s["train"])) or ({10004, 20004} <= set(s["val"]))
    m = read_manifest(out)
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["kind"] == "locator" and on_disk["format"] == 3  # written in the shared schema
    assert on_disk["libraries"]["onnxruntime"] and on_disk["created"]  # the model bundle's provenance fields
    assert [a["file"] for a in on_disk["artifacts"]] == ["locator-32.onnx", "locator-48.onnx"]
    assert all(a["size"] == (out / a["file"]).stat().st_size for a in on_disk["artifacts"])
    assert all(0.0 <= e["onnx_max_abs_diff"] <= 1e-4 for e in m["members"])  # measured through the cart's locator:
    assert all(e["onnx_check"].startswith("max |LearnedLocator member (onnxruntime") for e in m["members"])
    assert [e["input_size"] for e in m["members"]] == [32, 48]
    assert [e["training"]["steps_done"] for e in m["members"]] == [2, 3]
    assert set(m["validation"]) >= {"learned", "classical", "frames"}
    for size in (32, 48):
        assert (run / f"size{size}" / "model.safetensors").is_file() and (run / f"size{size}" / "training.json").is_file()
    loc = LearnedLocator(out)  # loads: every sha256 matches, the runtime can run both members
    assert loc.size == 48 and len(loc.members) == 2
    # --from-run re-exports the same weights without training and records how; a stale member file goes
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "locator-999.onnx").write_bytes(b"old")
    main([str(root), "--out", str(tmp_path / "again"), "--split", str(split), "--from-run", str(run / "size48")])
    again = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert again["members"][0]["training"] == m["members"][1]["training"] and "--from-run" in again["command"]
    assert not (tmp_path / "again" / "locator-999.onnx").exists()
    with pytest.raises(SystemExit, match="one per member"):
        main([str(root), "--out", str(tmp_path / "x"), "--split", str(split), "--size", "32", "48", "--steps", "1", "2", "3"])


def test_a_member_whose_onnx_differs_from_eager_is_caught(tiny_locator):
    """The runtime check compares each member as LearnedLocator runs it with its eager network: plant a change."""
    import torch

    from edgecalc.export.verify import ParityError
    from edgecalc.locator.train import check_through_runtime
    from edgecalc.model.weights import load_model

    _, _, out, run, _ = tiny_locator
    models = [load_model(run / f"size{size}" / "model.safetensors") for size in (32, 48)]
    frames = [generate_frame(7 + k, positive=bool(k % 2)).image for k in range(2)]
    loc = LearnedLocator(out)
    checks = check_through_runtime(loc, models, frames)
    assert [c["onnx_max_abs_diff"] <= 1e-4 for c in checks] == [True, True]
    with torch.no_grad():  # the ONNX file no longer matches this network: a stale or wrongly exported member
        models[1].decoder.heads[-1].bias.add_(0.5)  # the full-resolution mask head
    with pytest.raises(ParityError, match=r"locator-48\.onnx: the member as the cart's LearnedLocator runs it"):
        check_through_runtime(loc, models, frames)


def test_a_runtime_that_disagrees_with_eager_stops_the_bundle(tiny_locator, monkeypatch):
    """A bug in the backend the cart runs the locator with (not in the export's own onnxruntime session) is
    caught by the training command: it exits naming the member and leaves no loadable manifest."""
    from edgecalc.runtime.engine.backends.onnxruntime_backend import OnnxRuntimeBackend
    from edgecalc.runtime.locate.learned import LocatorBundleError

    tmp_path, root, _, run, split = tiny_locator
    infer = OnnxRuntimeBackend.infer
    monkeypatch.setattr(OnnxRuntimeBackend, "infer", lambda self, x: {k: v + 1e-3 for k, v in infer(self, x).items()})
    out = tmp_path / "planted"
    with pytest.raises(SystemExit, match=r"locator-48\.onnx: .* differs from eager by 0\.001 .*removed"):
        main([str(root), "--out", str(out), "--split", str(split), "--from-run", str(run / "size48")])
    assert not (out / "manifest.json").exists()
    monkeypatch.undo()
    with pytest.raises(LocatorBundleError, match="manifest.json not found"):
        LearnedLocator(out)
