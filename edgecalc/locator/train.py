"""Train the nodule locator's member networks on the DDTI frames, export them to ONNX and write the shipped bundle.

    python -m edgecalc.locator.train ../shared/data/ddti-nodules

is the one command that retrains it: it makes (or reads) the grouped split, trains one width-reduced
DS-AGnet per ``--size`` (64 and 96 px by default) on the scan areas of the training frames (plus
phantom full frames with and without a nodule), writes each member's ``model.safetensors`` to
``--run``/size<N>, exports ``locator-<N>.onnx`` per member and ``manifest.json`` (members, input
sizes, preprocessing, thresholds, this command, the validation figures, sha256s) to ``--out``
(default: the package's ``edgecalc/assets/locator``) and scores the ensemble on the validation split
against the classical baseline. CPU; seeded (same command, same machine -> same weights).
Each member is then checked as the cart runs it (``check_through_runtime``: the backend
``LearnedLocator`` opens, against the eager network); its ``onnx_max_abs_diff`` is that figure, and a
member beyond the float32 ONNX tolerance stops the command and removes the manifest.

Input = the largest scan area of the frame (as on the cart), jittered in size and position during
training so the network does not depend on the scan-area detector's exact edges; horizontal flips
(never vertical: depth has a direction in ultrasound) and gain / gamma changes (``--aug``).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

import edgecalc
from edgecalc.atomic import atomic_write_json
from edgecalc.data.preprocess import PREPROCESSING_SPEC
from edgecalc.export.onnx_export import TOLERANCE, export_onnx
from edgecalc.export.provenance import created_now, library_versions
from edgecalc.export.verify import ParityError, max_abs_diffs
from edgecalc.locator.split import make_split, read_patients, read_split, write_split
from edgecalc.model import DSAGNet, get_preset
from edgecalc.model.weights import load_model, save_model
from edgecalc.locator.evaluate_scan_area import frame_ids, load
from edgecalc.runtime.engine.manifest import MANIFEST_NAME, artifact_for, write_manifest
from edgecalc.runtime.locate.learned import (
    ASSET_DIR,
    FORMAT_VERSION,
    KIND,
    LearnedLocator,
    locator_input,
    target_mask,
)
from edgecalc.runtime.locate.scan_area import largest_scan_area
from edgecalc.train.losses import deep_supervision_loss

MODEL_FILE = "locator-{size}.onnx"
#: The shipped recipe: two members, 64 px (9000 steps) and 96 px (6000 steps); docs/locator.md.
DEFAULT_SIZES, DEFAULT_STEPS = (64, 96), (9000, 6000)
#: Post-processing of the shipped bundle, chosen on the validation split (docs/locator.md says how).
CROP_THRESHOLD, MIN_PEAK = 0.1, 0.5
INPUT_NAME, OUTPUT_NAME = "image", "mask"
#: Phantom frames use seeds from here on (the phantom's own data sets start at 0).
PHANTOM_SEED0 = 700_000
#: Nodule-free phantom frames (``--negatives``) use seeds from here on; checks use seeds below it.
NEGATIVE_SEED0 = 800_000
#: The runtime check's phantom frames (``runtime_check_inputs``): seeds from here on, below PHANTOM_SEED0.
RUNTIME_CHECK_SEED0 = 690_000


class Sample:
    """One training frame: gray uint8, nodule mask (bool) and the detected scan area (x, y, w, h)."""

    __slots__ = ("gray", "mask", "area")

    def __init__(self, gray: np.ndarray, mask: np.ndarray, area: tuple[int, int, int, int]) -> None:
        self.gray, self.mask, self.area = gray, mask, area


def _area_of(gray: np.ndarray) -> tuple[int, int, int, int]:
    a = largest_scan_area(gray)
    return tuple(a.box) if a is not None else (0, 0, gray.shape[1], gray.shape[0])  # type: ignore[return-value]


def ddti_samples(root: Path, ids: list[int]) -> list[Sample]:
    out = []
    for i in ids:
        img, msk = load(root, i)
        out.append(Sample(img, msk, _area_of(img)))
    return out


def phantom_samples(n: int, with_nodule: bool = True) -> list[Sample]:
    """``n`` phantom full frames: with a nodule (alternately with / without calcifications, seeds from
    PHANTOM_SEED0) or, ``with_nodule=False``, without one (empty target, seeds from NEGATIVE_SEED0)."""
    from edgecalc.data.phantom import generate_frame

    seed0 = PHANTOM_SEED0 if with_nodule else NEGATIVE_SEED0
    out = []
    for k in range(n):
        f = generate_frame(seed0 + k, positive=bool(k % 2), with_nodule=with_nodule)
        out.append(Sample(f.image, f.nodule_mask > 0, _area_of(f.image)))
    return out


AUGMENTATIONS = ("basic", "strong")


def augmented(s: Sample, size: int, rng: np.random.Generator, strength: str = "basic") -> tuple[np.ndarray, np.ndarray]:
    """(input (1, size, size), target (1, size, size)) of one sample with a random jitter, flip and gain.

    ``basic``: the scan-area rectangle jittered (+-15 % size, +-8 % position), horizontal flips, gain
    and gamma. ``strong`` adds what a different scanner or probe angle changes: a wider jitter
    (+-25 % / +-12 %), a small rotation (+-8 degrees), blur and multiplicative noise.
    """
    strong = strength == "strong"
    js, jp = (0.25, 0.12) if strong else (0.15, 0.08)
    x, y, w, h = s.area
    if rng.random() < 0.8:
        nw, nh = w * rng.uniform(1 - js, 1 + js), h * rng.uniform(1 - js, 1 + js)
        cx, cy = x + w / 2 + rng.uniform(-jp, jp) * w, y + h / 2 + rng.uniform(-jp, jp) * h
        x, y, w, h = int(round(cx - nw / 2)), int(round(cy - nh / 2)), max(16, int(round(nw))), max(16, int(round(nh)))
    img = locator_input(s.gray, (x, y, w, h), size)[0]
    tgt = target_mask(s.mask.view(np.uint8) * 255, (x, y, w, h), size)[None]
    if strong and rng.random() < 0.5:
        m = cv2.getRotationMatrix2D((size / 2, size / 2), float(rng.uniform(-8, 8)), 1.0)
        img = cv2.warpAffine(img[0], m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)[None]
        tgt = (cv2.warpAffine(tgt[0], m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0) >= 0.5)[None]
        tgt = tgt.astype(np.float32)
    if rng.random() < 0.5:
        img, tgt = img[:, :, ::-1], tgt[:, :, ::-1]
    img = np.clip(img ** rng.uniform(0.75, 1.33) * rng.uniform(0.8, 1.25), 0.0, 1.0)
    if strong:
        if rng.random() < 0.3:
            img = cv2.GaussianBlur(np.ascontiguousarray(img[0]), (0, 0), float(rng.uniform(0.3, 1.0)))[None]
        if rng.random() < 0.3:
            img = np.clip(img * rng.normal(1.0, 0.1, img.shape), 0.0, 1.0)
    return img.astype(np.float32), tgt


def make_model(size: int, width: float) -> DSAGNet:
    return DSAGNet(get_preset("lite", size).with_(width=width, name="locator"))


def train(samples: list[Sample], size: int, width: float, steps: int, batch: int, lr: float, seed: int,
          max_minutes: float | None, log_every: int = 25, aug: str = "basic") -> tuple[DSAGNet, dict[str, Any]]:
    """Adam with a cosine learning rate over ``steps`` (or ``max_minutes``); loss = the kit's deep-supervision Tversky loss + BCE."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = make_model(size, width).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t0, done, losses = time.perf_counter(), 0, []
    for step in range(steps):
        # cosine from lr to lr/50 over the run; with --max-minutes the clock can end the run first, and
        # then the schedule follows the clock so the last steps still anneal
        progress = step / steps
        if max_minutes is not None:
            progress = max(progress, (time.perf_counter() - t0) / (60 * max_minutes))
        for group in opt.param_groups:
            group["lr"] = lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
        idx = rng.integers(0, len(samples), batch)
        pairs = [augmented(samples[i], size, rng, aug) for i in idx]
        x = torch.from_numpy(np.stack([p[0] for p in pairs]).astype(np.float32))
        y = torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.float32))
        out = model(x)
        # Tversky needs a foreground: an empty target (a nodule-free frame, --negatives) would score
        # ~1 for any false-positive pixel and teach the network to answer nothing; BCE covers those
        has = y.flatten(1).amax(1) > 0
        loss = F.binary_cross_entropy(out.mask.clamp(1e-6, 1 - 1e-6), y)
        if bool(has.any()):
            loss = loss + deep_supervision_loss([p[has] for p in out.pyramid], y[has])[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        done = step + 1
        if done % log_every == 0 or done == steps:
            print(f"step {done}/{steps}  loss {np.mean(losses[-log_every:]):.4f}  "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
        if max_minutes is not None and time.perf_counter() - t0 > 60 * max_minutes:
            print(f"stopping at step {done}: --max-minutes {max_minutes} reached", flush=True)
            break
    return model.eval(), {"steps_done": done, "train_wall_s": round(time.perf_counter() - t0, 1),
                          "final_loss": round(float(np.mean(losses[-log_every:])), 4)}


class _MaskOnly(torch.nn.Module):
    def __init__(self, model: DSAGNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).mask


def export(model: DSAGNet, path: Path, size: int, seed: int = 0) -> float:
    """Float32 ONNX through the kit's one export (opset 17, dynamic batch, onnx.checker, onnxruntime
    parity against eager on seeded random input), written atomically; returns max |onnx - eager|."""
    gen = torch.Generator().manual_seed(seed)
    example, check = torch.rand(1, 1, size, size, generator=gen), torch.rand(3, 1, size, size, generator=gen)
    diffs = export_onnx(_MaskOnly(model), example, path, check, input_name=INPUT_NAME, output_names=(OUTPUT_NAME,))
    return diffs[OUTPUT_NAME]


def runtime_check_inputs(size: int, frames: list[np.ndarray], seed: int = 0, n_random: int = 4) -> np.ndarray:
    """What the cart feeds a member (each frame's largest scan area through ``locator_input``) plus seeded noise."""
    real = [locator_input(f, _area_of(f), size) for f in frames]
    noise = np.random.default_rng(seed).random((n_random, 1, size, size), dtype=np.float32)
    return np.concatenate([*real, noise]).astype(np.float32)


def check_through_runtime(locator: LearnedLocator, models: list[DSAGNet], frames: list[np.ndarray],
                          seed: int = 0) -> list[dict[str, Any]]:
    """Each member as the cart runs it (``locator.members``: the backend ``LearnedLocator`` opened, one input
    at a time, as ``probability`` calls it) against its eager network; ParityError naming the file above
    the float32 ONNX tolerance. Returns, per member, ``onnx_max_abs_diff`` and how it was measured."""
    checks = []
    for (size, backend), model, entry in zip(locator.members, models, locator.manifest["members"], strict=True):
        x = runtime_check_inputs(size, frames, seed)
        got = np.concatenate([backend.infer(x[i:i + 1])[locator.output_name] for i in range(len(x))])
        with torch.no_grad():
            ref = _MaskOnly(model.eval())(torch.from_numpy(x)).numpy()
        diff = max_abs_diffs([ref], [got], [locator.output_name])[locator.output_name]
        if not diff <= TOLERANCE:
            raise ParityError(f"{locator.bundle_dir / entry['file']}: the member as the cart's LearnedLocator runs it "
                              f"({backend.describe()}) differs from eager by {diff:.3g} (> {TOLERANCE:g})")
        checks.append({"onnx_max_abs_diff": diff,
                       "onnx_check": f"max |LearnedLocator member ({backend.describe()}, batch 1) - eager| on "
                                     f"{len(frames)} phantom frames' scan areas and {len(x) - len(frames)} seeded "
                                     f"uniform inputs; must be <= {TOLERANCE:g}"})
    return checks


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    atomic_write_json(path, doc, indent=1)


def phantom_check(locator: LearnedLocator, n: int = 24) -> dict[str, float]:
    """Box IoU on phantom frames the training never used (seeds below PHANTOM_SEED0)."""
    from edgecalc.data.phantom import generate_frame
    from edgecalc.locator.evaluate_scan_area import box_iou

    ious = []
    for k in range(n):
        f = generate_frame(PHANTOM_SEED0 - 1 - k, positive=bool(k % 2))
        found = locator.locate(f.image)
        ious.append(0.0 if found is None else box_iou(found.box, f.nodule_box))
    a = np.array(ious)
    empty = [locator.locate(generate_frame(NEGATIVE_SEED0 - 1 - k, positive=False, with_nodule=False).image) is None
             for k in range(n)]
    return {"frames": n, "mean_box_iou": round(float(a.mean()), 4), "iou_ge_0.5_share": round(float(np.mean(a >= 0.5)), 4),
            "nodule_free_frames": n, "nodule_free_answered_empty": round(float(np.mean(empty)), 4)}


def _per_member(values: list, n: int, name: str) -> list:
    """One value for every member: a single value is repeated, else exactly ``n`` are needed."""
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise SystemExit(f"{name} takes one value or one per member ({n}), got {len(values)}")
    return values


def train_member(args: argparse.Namespace, samples: list[Sample], n_ddti: int, size: int, steps: int, run_dir: Path,
                 command: str) -> tuple[DSAGNet, dict[str, Any]]:
    """Train one member network and keep its weights and log in ``run_dir``."""
    model, log = train(samples, size, args.width, steps, args.batch, args.lr, args.seed, args.max_minutes, aug=args.aug)
    training = {"command": command,
                "data": "DDTI (Pedraza et al., Proc. SPIE 9287, 92870W, 2015), TN-SCUI 2020 form",
                "split": "split.json", "train_frames": n_ddti,
                "phantom_frames": args.phantom, "negative_frames": args.negatives, "augmentation": args.aug,
                "size": size, "steps": steps, "batch": args.batch, "lr": args.lr, "seed": args.seed,
                "threads": args.threads, **log}
    run_dir.mkdir(parents=True, exist_ok=True)
    save_model(model, run_dir / "model.safetensors")
    write_json_atomic(run_dir / "training.json", training)
    return model, training


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="the ddti-nodules folder (images/, masks/)")
    ap.add_argument("--out", type=Path, default=ASSET_DIR, help="bundle folder (default: the package's assets)")
    ap.add_argument("--run", type=Path, default=Path("runs/locator"),
                    help="folder for each member's safetensors weights and log (RUN/size64, RUN/size96, ...)")
    ap.add_argument("--split", type=Path, default=ASSET_DIR / "split.json",
                    help="split JSON; made (seeded, grouped) when absent")
    ap.add_argument("--size", type=int, nargs="+", default=list(DEFAULT_SIZES),
                    help="input side of each member network (multiples of 16); their probability maps are averaged")
    ap.add_argument("--width", type=float, default=0.25, help="width multiplier of the DS-AGnet filters")
    ap.add_argument("--steps", type=int, nargs="+", default=list(DEFAULT_STEPS),
                    help="optimiser steps: one value for every member, or one per --size")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--phantom", type=int, default=120, help="phantom full frames added to the training pool")
    ap.add_argument("--negatives", type=int, default=60,
                    help="phantom full frames WITHOUT a nodule added to the pool (teach the empty answer)")
    ap.add_argument("--aug", choices=AUGMENTATIONS, default="strong", help="augmentation strength (see augmented())")
    ap.add_argument("--threshold", type=float, default=0.4, help="probability threshold of the mask and box")
    ap.add_argument("--crop-threshold", type=float, default=CROP_THRESHOLD,
                    help="lower threshold of the nodule's extent, which the crop holds (docs/locator.md)")
    ap.add_argument("--min-peak", type=float, default=MIN_PEAK,
                    help="a component whose peak probability is below this counts as no nodule")
    ap.add_argument("--min-share", type=float, default=0.003, help="smallest component, as a share of the scan area")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="stop each member's training early after this long (recorded)")
    ap.add_argument("--from-run", type=Path, nargs="+", default=None,
                    help="skip training: export, evaluate and ship the weights previous runs left in these folders "
                         "(model.safetensors, training.json; one folder per member)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    t_all = time.perf_counter()

    ids = frame_ids(args.root)
    patients = read_patients(args.root)
    if args.split.is_file():
        split = read_split(args.split, patients)
    else:
        split = make_split(ids, 0.2, args.seed, patients)
        write_split(args.split, split, args.seed, 0.2, by_patient=patients is not None)
        print(f"split -> {args.split} (grouped by {'patient' if patients else 'frame'})")
    known = set(ids)
    missing = [i for i in split["train"] + split["val"] if i not in known]
    if missing:
        raise SystemExit(f"split {args.split} names frames not under {args.root}/images: {missing[:5]}")
    argv_used = sys.argv[1:] if argv is None else argv
    command = "python -m edgecalc.locator.train " + shlex.join(str(a) for a in argv_used)
    members: list[tuple[DSAGNet, dict[str, Any]]] = []
    if args.from_run is not None:
        for run_dir in args.from_run:
            for name in ("model.safetensors", "training.json"):
                if not (run_dir / name).is_file():
                    raise SystemExit(f"--from-run {run_dir}: {name} not found there")
            members.append((load_model(run_dir / "model.safetensors"),
                            json.loads((run_dir / "training.json").read_text())))
    else:
        sizes = args.size
        steps = _per_member(args.steps, len(sizes), "--steps")
        samples = ddti_samples(args.root, split["train"])
        if args.phantom:
            samples += phantom_samples(args.phantom)
        if args.negatives:
            samples += phantom_samples(args.negatives, with_nodule=False)
        print(f"{len(split['train'])} DDTI training frames, {args.phantom} phantom frames, "
              f"{args.negatives} nodule-free phantom frames, {len(split['val'])} held out; "
              f"members at {', '.join(f'{s} px ({n} steps)' for s, n in zip(sizes, steps))}")
        for size, n_steps in zip(sizes, steps):
            print(f"member {size} px", flush=True)
            members.append(train_member(args, samples, len(split["train"]), size, n_steps, args.run / f"size{size}",
                                        command))
    args.out.mkdir(parents=True, exist_ok=True)
    artifacts, entries = [], []
    for model, training in members:
        size = model.cfg.input_size
        file = MODEL_FILE.format(size=size)
        diff = export(model, args.out / file, size, args.seed)
        artifacts.append(artifact_for(args.out, file, "onnx", "fp32").to_dict())
        entries.append({"file": file, "input_size": size, "model_config": model.cfg.to_dict(),
                        "onnx_max_abs_diff": diff, "training": training})
    if len({e["file"] for e in entries}) != len(entries):
        raise SystemExit("two members have the same input size; give each member its own --size")
    total_bytes = sum(a["size"] for a in artifacts)
    manifest: dict[str, Any] = {
        "kind": KIND, "format": FORMAT_VERSION, "artifacts": artifacts, "members": entries,
        "input": {"name": INPUT_NAME, "dtype": "float32", "range": [0.0, 1.0], "layout": "NCHW",
                  "dynamic_axes": {"0": "batch"},
                  "meaning": "largest scan area (edgecalc.runtime.locate.scan_area.largest_scan_area) cut out and "
                             "resized to each member's input_size x input_size by edgecalc.data.preprocess.preprocess "
                             "(no padding)"},
        "outputs": [{"name": OUTPUT_NAME, "dtype": "float32",
                     "meaning": "nodule probability (N, 1, input_size, input_size), sigmoid"}],
        "preprocessing": PREPROCESSING_SPEC,
        "threshold": args.threshold, "crop_threshold": args.crop_threshold, "min_peak": args.min_peak,
        "min_share": args.min_share,
        "postprocess": "members' probability maps averaged (bilinear to the largest member's size), resized to "
                       "the scan area (bilinear); largest 8-connected component >= threshold, none when smaller "
                       "than min_share of the area or peaking below min_peak; confidence = its mean probability x "
                       "its share of the foreground; extent = the box of the component >= crop_threshold holding "
                       "it, which the square crop holds",
        "command": command, "edgecalc_version": edgecalc.__version__, "libraries": library_versions(),
        "created": created_now(),
    }
    for stale in args.out.glob("locator*.onnx"):  # files of an earlier bundle that this one does not name
        if stale.name not in {e["file"] for e in entries}:
            stale.unlink()
    write_manifest(args.out, manifest, indent=1)  # the bundle is complete and loadable from here on

    from edgecalc.data.phantom import generate_frame
    from edgecalc.locator.evaluate import evaluate

    locator = LearnedLocator(args.out, threads=1)
    frames = [generate_frame(RUNTIME_CHECK_SEED0 + k, positive=bool(k % 2)).image for k in range(4)]
    try:  # the figure the manifest keeps is the one of the code the cart runs, not of the export's own session
        checks = check_through_runtime(locator, [model for model, _ in members], frames, args.seed)
    except ParityError as exc:
        locator.close()
        (args.out / MANIFEST_NAME).unlink()  # no loadable bundle with a member the cart would run wrongly
        raise SystemExit(f"{exc}; {args.out / MANIFEST_NAME} removed: the bundle is not fit to ship") from exc
    for entry, check in zip(entries, checks, strict=True):
        entry.update(check)
    write_manifest(args.out, manifest, indent=1)
    res = evaluate(args.root, split["val"], locator)
    manifest["validation"] = {"frames": len(split["val"]), "learned": res["learned"], "classical": res["classical"]}
    manifest["phantom_check"] = phantom_check(locator)
    write_manifest(args.out, manifest, indent=1)
    if args.from_run is None:
        write_json_atomic(args.run / "validation.json", res)
    for name in ("learned", "classical"):
        print(name, json.dumps(res[name]))
    print("phantom", json.dumps(manifest["phantom_check"]))
    print(f"bundle -> {args.out} ({len(entries)} member(s), {total_bytes / 1e6:.2f} MB), "
          f"total {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
