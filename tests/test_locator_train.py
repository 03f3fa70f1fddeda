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


def test_train_export_and_ship_a_tiny_locator(tmp_path):
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
    s = read_split(split)
    assert ({10004, 20004} <= set(s["train"])) or ({10004, 20004} <= set(s["val"]))
    m = read_manifest(out)
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["kind"] == "locator" and on_disk["format"] == 3  # written in the shared schema
    assert on_disk["libraries"]["onnxruntime"] and on_disk["created"]  # the model bundle's provenance fields
    assert [a["file"] for a in on_disk["artifacts"]] == ["locator-32.onnx", "locator-48.onnx"]
    assert all(a["size"] == (out / a["file"]).stat().st_size for a in on_disk["artifacts"])
    assert all(0.0 <= e["onnx_max_abs_diff"] <= 1e-4 for e in m["members"])  # the shared export's parity check ran
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
