"""The one manifest contract of every bundle folder the kit ships: the model's and the nodule locator's.

A bundle is a folder with a ``manifest.json`` and the files it lists. Both kinds share one envelope
(this module), each adds its own fields on top (``bundle.Manifest`` for the model,
``runtime/locate/learned.py`` for the locator):

    kind        "model" | "locator": a model bundle handed to the locator (or the reverse) is refused by name
    format      the kind's schema version (``FORMATS``); a newer one is refused, older ones are read
    artifacts   every file the runtime opens, as ``Artifact`` (file, kind, precision, sha256, size, ...)
    input, outputs, preprocessing, command: what to feed, what comes out, how it was made

Both writers (``edgecalc export``, ``python -m edgecalc.locator.train``) list files with
``artifact_for`` and write with ``write_manifest``; both readers go through ``read_manifest_doc``
(folder, JSON, kind, version) and ``verify_files`` (missing file, changed size or sha256, a file or
ONNX external data escaping the folder), so the two bundles fail with the same messages, each
naming the file. It lives in the runtime, torch-free, because the cart reads both bundles.
Manifests written before the envelope had ``kind`` (model format 1, locator ``"format":
"edgecalc-locator"``) are recognised by ``manifest_kind`` and still load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecalc.atomic import atomic_write_text

MANIFEST_NAME = "manifest.json"
#: The bundle kinds and the schema version this edgecalc writes for each.
FORMATS = {"model": 2, "locator": 3}
#: What each kind is called in messages, and what to do about a broken one.
KIND_NAMES = {"model": "export bundle", "locator": "locator bundle"}
REMEDIES = {"model": "re-export the bundle", "locator": "copy the bundle again or retrain it, see docs/locator.md"}
#: The locator's ``format`` value before the envelope (its version was ``format_version``).
LEGACY_LOCATOR_FORMAT = "edgecalc-locator"
#: Kinds of files a manifest lists.
#: "torchscript-trt": TorchScript with a TensorRT engine embedded (``--via torch-tensorrt``), for LibTorch
#: deployments; the runtime lists and checksums it but does not run it.
KINDS = ("torchscript", "onnx", "engine", "torchscript-trt", "report", "verifier")


class BundleError(Exception):
    """A bundle that cannot be used: missing or changed file, bad manifest, incompatible engine."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class EngineTarget:
    """What a TensorRT engine is tied to: the GPU model, its compute capability, the TensorRT version."""

    gpu_name: str
    compute_capability: str
    tensorrt_version: str


@dataclass
class Artifact:
    """One file of a bundle, with its checksum; ``engine`` only for TensorRT engines.

    ``size`` None: not recorded (a locator manifest of format 1); only the sha256 is checked then.
    """

    file: str
    kind: str
    precision: str | None
    sha256: str
    size: int | None
    engine: EngineTarget | None = None
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Artifact":
        d = dict(d)
        eng = d.pop("engine", None)
        return cls(**d, engine=EngineTarget(**eng) if eng else None)


def artifact_for(root: str | Path, file: str, kind: str, precision: str | None,
                 engine: EngineTarget | None = None, notes: str = "") -> Artifact:
    """The manifest entry of ``root/file``: its sha256 and size, measured now."""
    if kind not in KINDS:
        raise ValueError(f"artifact kind {kind!r} is not one of {KINDS}")
    path = Path(root) / file
    return Artifact(file, kind, precision, sha256_file(path), path.stat().st_size, engine, notes)


ARTIFACT_FIELDS = ("file", "kind", "precision", "sha256", "size")


def artifacts_from(items: Any) -> list[Artifact]:
    """A manifest's ``artifacts`` as ``Artifact``s; ValueError naming the entry and field that is missing or wrong."""
    if not isinstance(items, list):
        raise ValueError(f"artifacts is a {type(items).__name__}, not a list")
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"artifacts[{n}] is a {type(item).__name__}, not an object")
        missing = [f"artifacts[{n}].{k}" for k in ARTIFACT_FIELDS if k not in item]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}")
    return [Artifact.from_dict(a) for a in items]


def write_manifest(root: str | Path, doc: dict[str, Any], indent: int = 2) -> Path:
    """Write ``root/manifest.json`` atomically (a crash leaves the old manifest or the new one)."""
    return atomic_write_text(Path(root) / MANIFEST_NAME, json.dumps(doc, indent=indent) + "\n")


def manifest_kind(doc: dict[str, Any]) -> str | None:
    """The bundle kind a manifest declares, or recognises from its pre-envelope form; None: neither."""
    kind = doc.get("kind")
    if kind is not None:
        return kind if isinstance(kind, str) else None
    fmt = doc.get("format")
    if fmt == LEGACY_LOCATOR_FORMAT:
        return "locator"
    if fmt == 1 and not isinstance(fmt, bool) and "artifacts" in doc:  # model bundles before the envelope
        return "model"
    if "format" not in doc and "artifacts" in doc:  # Manifest.from_dict always read a missing format as 1
        return "model"
    return None


def read_manifest_doc(bundle_dir: str | Path, kind: str) -> dict[str, Any]:
    """``bundle_dir/manifest.json`` parsed and checked to be a ``kind`` bundle this edgecalc reads.

    BundleError naming the folder or the manifest: no folder, no manifest, not JSON, not an object,
    another kind of bundle, or a format newer than ``FORMATS[kind]``. The fields are the caller's.
    """
    root = Path(bundle_dir)
    mpath = root / MANIFEST_NAME
    what = KIND_NAMES[kind]
    if not root.is_dir():
        raise BundleError(f"bundle folder {root} does not exist")
    if not mpath.is_file():
        raise BundleError(f"{mpath} not found: {root} is not an edgecalc {what}")
    try:
        doc = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{mpath} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise BundleError(f"{mpath} holds a JSON {type(doc).__name__}, not an object")
    found = manifest_kind(doc)
    if found != kind:
        said = (f"belongs to a {found} bundle (kind {found!r})" if found in KIND_NAMES
                else f"names no bundle kind this edgecalc knows (kind {doc.get('kind')!r}, format {doc.get('format')!r})")
        raise BundleError(f"{mpath} {said}, not to an edgecalc {what} (kind {kind!r})")
    version = doc.get("format", 1)
    if version == LEGACY_LOCATOR_FORMAT:
        version = doc.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleError(f"{mpath}: format {version!r} is not a version number")
    if version > FORMATS[kind]:
        raise BundleError(f"{mpath}: {what} format {version} is newer than this edgecalc reads ({FORMATS[kind]}); "
                          "update edgecalc")
    return doc


# --- ONNX external data: where a model file says its tensors live -------------------------------
# An ONNX tensor may keep its bytes in another file (``data_location = EXTERNAL``, an ``external_data``
# entry ``location`` relative to the model's folder, as ``onnx.external_data_helper`` writes it). A
# location like ``../x``, an absolute path or a symlink out would make the engine read outside the
# bundle. onnxruntime >= 1.17 and OpenVINO refuse such paths themselves, but with raw exceptions and
# only in their own versions; the kit checks first, without onnx (a torch-free runtime need not have
# it), by walking the protobuf wire format over the fields that can hold a TensorProto.

#: ONNX message -> {field number: message type of that field} for every path down to a TensorProto.
_ONNX_FIELDS: dict[str, dict[int, str]] = {
    "model": {7: "graph", 25: "function"},
    "function": {7: "node"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {13: "entry"},
    "entry": {},
}
_ONNX_MAX_DEPTH = 64


def _varint(buf: memoryview, i: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= end or shift > 63:
            raise ValueError("truncated or overlong varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _walk(buf: memoryview, start: int, end: int, kind: str, depth: int, found: list[str]) -> dict[int, bytes]:
    """Visit one message; collect ``location`` values of tensors; return an entry's key/value fields."""
    if depth > _ONNX_MAX_DEPTH:
        raise ValueError(f"messages nested deeper than {_ONNX_MAX_DEPTH}")
    fields = _ONNX_FIELDS[kind]
    strings: dict[int, bytes] = {}
    external = False
    entries: list[dict[int, bytes]] = []
    i = start
    while i < end:
        key, i = _varint(buf, i, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i, end)
            if kind == "tensor" and number == 14:
                external = value == 1
        elif wire == 1 or wire == 5:
            i += 8 if wire == 1 else 4
        elif wire == 2:
            length, i = _varint(buf, i, end)
            if length > end - i:
                raise ValueError("a field runs past the end of its message (truncated file?)")
            if number in fields:
                sub = _walk(buf, i, i + length, fields[number], depth + 1, found)
                if fields[number] == "entry":
                    entries.append(sub)
            elif kind == "entry" and number in (1, 2):
                strings[number] = bytes(buf[i:i + length])
            i += length
        else:
            raise ValueError(f"wire type {wire} (groups or garbage)")
        if i > end:
            raise ValueError("a field runs past the end of its message (truncated file?)")
    if kind == "tensor" and (external or entries):
        for e in entries:
            if e.get(1) == b"location":
                found.append(e.get(2, b"").decode("utf-8", errors="replace"))
    return strings


def onnx_external_locations(path: str | Path) -> list[str]:
    """Every external-data ``location`` an ONNX file names; ValueError if it is no valid protobuf."""
    data = Path(path).read_bytes()
    found: list[str] = []
    _walk(memoryview(data), 0, len(data), "model", 0, found)
    return found


def check_onnx_file(path: str | Path, strict: bool = True) -> None:
    """BundleError unless ``path``'s external data, if any, lies beside it (and, ``strict``, it parses).

    The backends call it (strict) before the engine opens the file, so no engine is ever asked to read
    outside the folder. ``load_bundle`` calls it lenient: a file that does not parse names no location
    and is the engine's to refuse (the backends turn that into a BundleError naming the file).
    """
    path = Path(path)
    try:
        locations = onnx_external_locations(path)
    except OSError as exc:
        raise BundleError(f"{path} cannot be read: {exc}") from None
    except ValueError as exc:
        if not strict:
            return
        raise BundleError(f"{path} is not a valid ONNX file: {exc}") from None
    folder = path.parent.resolve()
    for loc in locations:
        if not loc or "\x00" in loc or Path(loc).is_absolute() or ".." in Path(loc).parts:
            raise BundleError(f"{path} keeps tensor data at {loc!r}, outside its folder: refusing to load it")
        try:
            resolved = (path.parent / loc).resolve()
        except (OSError, ValueError) as exc:
            raise BundleError(f"{path} keeps tensor data at {loc!r}, which cannot be resolved: {exc}") from None
        if folder not in resolved.parents:
            raise BundleError(f"{path} keeps tensor data at {loc!r}, which resolves to {resolved}, outside "
                              f"{folder}: refusing to load it")


def verify_files(root: str | Path, artifacts: list[Artifact], kind: str = "model") -> None:
    """Every listed file exists and matches its size and sha256; BundleError names the first that does not.

    The same checks and messages for both bundle kinds; ``kind`` only picks the remedy the message gives.
    """
    root = Path(root)
    for art in artifacts:
        if not isinstance(art.file, str) or not art.file or "\x00" in art.file:
            raise BundleError(f"manifest lists an artifact file name {art.file!r} that is no file name")
        path = root / art.file
        if Path(art.file).is_absolute() or ".." in Path(art.file).parts:
            raise BundleError(f"manifest lists {art.file!r}, which is outside the bundle")
        try:
            resolved = path.resolve()
            inside = root.resolve() in resolved.parents
            exists = path.is_file()
        except (OSError, ValueError) as exc:
            raise BundleError(f"manifest lists {art.file!r}, which cannot be read: {exc}") from None
        if not inside:  # e.g. a symlink whose target lies outside the bundle
            raise BundleError(f"{art.file} resolves to {resolved}, outside the bundle {root}")
        if not exists:
            raise BundleError(f"{art.file} is listed in {root / MANIFEST_NAME} but missing from the bundle")
        if art.size is not None and path.stat().st_size != art.size:
            raise BundleError(f"{art.file} has changed: {path.stat().st_size} bytes, the manifest says {art.size} "
                              f"({REMEDIES.get(kind, REMEDIES['model'])})")
        if sha256_file(path) != art.sha256:
            raise BundleError(f"{art.file} has changed: its sha256 does not match the manifest "
                              f"(corrupt copy or edited file; {REMEDIES.get(kind, REMEDIES['model'])})")
        if art.kind == "onnx":
            check_onnx_file(path, strict=False)
