"""Export bundles under a fuzzed ``manifest.json``: ``load_bundle`` gives a Bundle or a BundleError.

The learned locator's bundle gets the same treatment: ``LearnedLocator`` or ``LocatorBundleError``,
every member model inside the folder (its files are checked by the same shared code,
``runtime/engine/manifest.py``).

The seed is the shipped bundle's manifest with one small artifact. Hypothesis drops keys, swaps
values for other types (lists, strings, nulls, huge numbers), and points artifact file names out of
the bundle (``..``, absolute paths, a symlink whose target lies outside). Contract: a ``Bundle`` whose
every artifact file resolves inside the folder, or ``BundleError`` — never another exception.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

pytest.importorskip("hypothesis", reason="the fuzz suite needs hypothesis (pip install -e '.[dev]')")

from hypothesis import example, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edgecalc.runtime.engine.bundle import MANIFEST_NAME, BundleError, load_bundle, sha256_file  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[2] / "edgecalc" / "assets" / "bundle" / MANIFEST_NAME
PAYLOAD = b"onnx bytes stand-in"


def _seed() -> dict:
    m = json.loads(SHIPPED.read_text())
    m["artifacts"] = [{"file": "model.onnx", "kind": "onnx", "precision": "fp32", "sha256": "", "size": len(PAYLOAD),
                       "engine": None, "notes": ""}]
    return m


SEED = _seed()
#: copied per draw: a later step may change a drawn list or dict in place (shared, it leaked into later examples)
ODD = st.sampled_from([None, "", "x", [], [1, 2], {}, {"a": 1}, 0, -1, 10**30, 1.5, float("nan"),
                      True]).map(copy.deepcopy)
KINDS = st.sampled_from(["model", "locator", "Model"])
ESCAPES = st.sampled_from(["../outside.onnx", "/etc/hostname", "sub/../../outside.onnx", "link.onnx", "", ".",
                           "model.onnx\x00", "a" * 400])


@st.composite
def manifests(draw) -> dict | list | str:
    m = copy.deepcopy(SEED)
    for _ in range(draw(st.integers(1, 4))):
        what = draw(st.sampled_from(["drop", "retype", "artifact_field", "artifact_retype", "escape", "format", "kind",
                                     "whole"]))
        keys = sorted(m) if isinstance(m, dict) else []
        if what == "drop" and keys:
            m.pop(draw(st.sampled_from(keys)))
        elif what == "retype" and keys:
            m[draw(st.sampled_from(keys))] = draw(ODD)
        elif what == "artifact_field" and isinstance(m, dict) and isinstance(m.get("artifacts"), list) and m["artifacts"]:
            art = m["artifacts"][0]
            if isinstance(art, dict):
                art[draw(st.sampled_from(["file", "kind", "precision", "sha256", "size", "engine", "extra"]))] = draw(ODD)
        elif what == "artifact_retype" and isinstance(m, dict):
            m["artifacts"] = draw(st.one_of(ODD, st.lists(ODD, max_size=2)))
        elif what == "escape" and isinstance(m, dict) and isinstance(m.get("artifacts"), list) and m["artifacts"]:
            if isinstance(m["artifacts"][0], dict):
                m["artifacts"][0]["file"] = draw(ESCAPES)
        elif what == "format" and isinstance(m, dict):
            m["format"] = draw(st.one_of(ODD, st.sampled_from([1, 2, 99])))
        elif what == "kind" and isinstance(m, dict):
            m["kind"] = draw(st.one_of(ODD, KINDS))
        elif what == "whole":
            m = draw(st.sampled_from([[], "manifest", 3, None]))
    return m


@given(manifests())
@example({**SEED, "artifacts": "model.onnx"})  # found by this test: a ValueError escaped load_bundle
@example({**SEED, "artifacts": [{**SEED["artifacts"][0], "file": "link.onnx"}]})  # found by this test: a symlink out was accepted
def test_load_bundle_returns_a_bundle_or_a_bundle_error(tmp_path_factory, manifest):
    root = tmp_path_factory.mktemp("bundle")
    outside = root.parent / "outside.onnx"
    outside.write_bytes(PAYLOAD)
    (root / "model.onnx").write_bytes(PAYLOAD)
    (root / "link.onnx").symlink_to(outside)
    digest = sha256_file(root / "model.onnx")
    if isinstance(manifest, dict) and isinstance(manifest.get("artifacts"), list):
        for art in manifest["artifacts"]:
            if isinstance(art, dict) and art.get("sha256") == "":
                art["sha256"] = digest  # so that the checksum is not what stops a good manifest
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, allow_nan=True))
    try:
        bundle = load_bundle(root)
    except BundleError:
        return
    for art in bundle.manifest.artifacts:
        resolved = (root / art.file).resolve()
        assert root.resolve() in resolved.parents, f"{art.file} resolves outside the bundle: {resolved}"


def test_the_seed_itself_loads(tmp_path):
    (tmp_path / "model.onnx").write_bytes(PAYLOAD)
    m = copy.deepcopy(SEED)
    m["artifacts"][0]["sha256"] = sha256_file(tmp_path / "model.onnx")
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(m))
    assert load_bundle(tmp_path).manifest.artifacts[0].file == "model.onnx"


# --- the learned nodule locator's bundle (edgecalc/assets/locator: manifest.json + one ONNX per member) ---

from edgecalc.runtime.locate import learned as _loc  # noqa: E402

LOCATOR_SEED = json.loads((_loc.ASSET_DIR / _loc.MANIFEST_NAME).read_text())
LOCATOR_ESCAPES = st.sampled_from(["../outside.onnx", "/etc/hostname", "link.onnx", "sub/../../outside.onnx", "",
                                   "locator-64.onnx\x00", 5, None])


@st.composite
def locator_manifests(draw) -> object:
    m = copy.deepcopy(LOCATOR_SEED)
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["drop", "retype", "member_field", "member_retype", "artifact_field", "escape",
                                     "envelope", "whole"]))
        if what == "drop" and isinstance(m, dict) and m:
            m.pop(draw(st.sampled_from(sorted(m))))
        elif what == "retype" and isinstance(m, dict) and m:
            m[draw(st.sampled_from(sorted(m)))] = draw(ODD)
        elif what == "member_field" and isinstance(m, dict) and isinstance(m.get("members"), list) and m["members"]:
            if isinstance(m["members"][0], dict):
                m["members"][0][draw(st.sampled_from(["file", "input_size", "extra"]))] = draw(ODD)
        elif what == "member_retype" and isinstance(m, dict):
            m["members"] = draw(st.one_of(ODD, st.lists(ODD, max_size=2)))
        elif what == "artifact_field" and isinstance(m, dict) and isinstance(m.get("artifacts"), list) and m["artifacts"]:
            if isinstance(m["artifacts"][0], dict):
                m["artifacts"][0][draw(st.sampled_from(["file", "kind", "sha256", "size", "engine", "extra"]))] = draw(ODD)
        elif what == "escape" and isinstance(m, dict) and isinstance(m.get("members"), list) and m["members"]:
            if isinstance(m["members"][0], dict):
                name = draw(LOCATOR_ESCAPES)
                m["members"][0]["file"] = name  # the member and its artifact entry both point out
                if isinstance(m.get("artifacts"), list) and m["artifacts"] and isinstance(m["artifacts"][0], dict):
                    m["artifacts"][0]["file"] = name
        elif what == "envelope" and isinstance(m, dict):  # another kind, another version, the legacy form
            m[draw(st.sampled_from(["kind", "format", "format_version"]))] = draw(
                st.one_of(ODD, KINDS, st.sampled_from([1, 2, 3, 4, "edgecalc-locator"])))
        elif what == "whole":
            m = draw(st.sampled_from([[], "manifest", 3, None]))
    return m


@given(locator_manifests())
@example({**LOCATOR_SEED, "preprocessing": "edgecalc-gray01"})  # found: AttributeError escaped read_manifest
@example({**LOCATOR_SEED, "members": [{**LOCATOR_SEED["members"][0], "file": "link.onnx"}],  # found: read outside
          "artifacts": [{**LOCATOR_SEED["artifacts"][0], "file": "link.onnx"}, *LOCATOR_SEED["artifacts"][1:]]})
@example({**LOCATOR_SEED, "outputs": []})  # an empty outputs list must be a LocatorBundleError, not an IndexError
@example({**LOCATOR_SEED, "members": 5})  # found: TypeError escaped read_manifest
@example({**LOCATOR_SEED, "threshold": None})  # found: TypeError escaped LearnedLocator
def test_the_locator_bundle_loads_or_gives_a_locator_bundle_error(tmp_path_factory, manifest):
    import shutil

    root = tmp_path_factory.mktemp("locator")
    for member in LOCATOR_SEED["members"]:
        shutil.copy(_loc.ASSET_DIR / member["file"], root / member["file"])
    outside = root.parent / "outside.onnx"
    shutil.copy(_loc.ASSET_DIR / LOCATOR_SEED["members"][0]["file"], outside)
    (root / "link.onnx").symlink_to(outside)
    (root / _loc.MANIFEST_NAME).write_text(json.dumps(manifest, allow_nan=True))
    if isinstance(manifest, dict) and isinstance(manifest.get("artifacts"), list):
        for a in manifest["artifacts"]:  # the checksum is not what should stop an escape
            if isinstance(a, dict) and a.get("file") in ("../outside.onnx", "link.onnx", "sub/../../outside.onnx"):
                a["sha256"], a["size"] = LOCATOR_SEED["artifacts"][0]["sha256"], LOCATOR_SEED["artifacts"][0]["size"]
        (root / _loc.MANIFEST_NAME).write_text(json.dumps(manifest, allow_nan=True))
    try:
        loc = _loc.LearnedLocator(root, threads=1)
    except _loc.LocatorBundleError:
        return
    for m in loc.manifest["members"]:
        assert root.resolve() in (root / m["file"]).resolve().parents, m["file"]
