"""Exported bundles: the manifest, its checksums, and the engine compatibility check (no torch).

An export bundle is a folder written by ``edgecalc export``::

    BUNDLE/manifest.json        this file's ``Manifest``: model, input, preprocessing, outputs, checksums
    BUNDLE/model.ts             TorchScript (traced, frozen) for LibTorch
    BUNDLE/model.fp32.onnx      float32 ONNX, opset 17, dynamic batch
    BUNDLE/model.fp16.onnx      FP16 compute, float32 inputs/outputs       (--precision fp16)
    BUNDLE/model.int8.onnx      explicit Q/DQ, symmetric INT8              (--precision int8)
    BUNDLE/model.<p>.engine     TensorRT engine for one GPU + TensorRT     (--engine)
    BUNDLE/parity.json          every artifact against eager float32

Export writes through the same ``Manifest`` class the runtime reads, so the two cannot drift: this
module is the one definition, and it lives in the runtime because the runtime must not import the
export code (which needs torch). ``load_bundle`` refuses a bundle whose listed files are missing or
changed, naming the file; ``Bundle.engine_path`` refuses an engine built for another GPU or
TensorRT version and says how to rebuild it. An ONNX file whose external data (``location``) lies
outside its folder (``../x``, an absolute path, a symlink out) is refused before any engine reads it
(``check_onnx_file``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecalc.atomic import atomic_write_text

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
#: Kinds of files a manifest lists.
#: "torchscript-trt": TorchScript with a TensorRT engine embedded (``--via torch-tensorrt``), for LibTorch
#: deployments; the runtime lists and checksums it but does not run it.
KINDS = ("torchscript", "onnx", "engine", "torchscript-trt", "report")


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
    """One file of the bundle, with its checksum; ``engine`` only for TensorRT engines."""

    file: str
    kind: str
    precision: str | None
    sha256: str
    size: int
    engine: EngineTarget | None = None
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Artifact":
        d = dict(d)
        eng = d.pop("engine", None)
        return cls(**d, engine=EngineTarget(**eng) if eng else None)


@dataclass
class Manifest:
    """Everything a runtime needs to know to feed the model and read its outputs, plus provenance."""

    model: dict[str, Any]
    input: dict[str, Any]
    preprocessing: dict[str, Any]
    outputs: list[dict[str, Any]]
    decision: dict[str, Any]
    source_weights: dict[str, Any]
    libraries: dict[str, str | None]
    edgecalc_version: str
    command: str
    created: str
    artifacts: list[Artifact] = field(default_factory=list)
    calibration: dict[str, Any] | None = None
    format: int = MANIFEST_FORMAT

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["artifacts"] = [a.to_dict() for a in self.artifacts]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Manifest":
        known = {f.name for f in dataclasses.fields(cls)}
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in d]
        if missing:
            raise BundleError(f"manifest lacks field(s) {missing}")
        unknown = sorted(set(d) - known)
        if unknown:
            raise BundleError(f"manifest has unknown field(s) {unknown}")
        d = dict(d)
        d["artifacts"] = [Artifact.from_dict(a) for a in d.get("artifacts", [])]
        if d.get("format", MANIFEST_FORMAT) > MANIFEST_FORMAT:
            raise BundleError(f"manifest format {d['format']} is newer than this edgecalc reads ({MANIFEST_FORMAT})")
        return cls(**d)

    def artifact(self, kind: str, precision: str | None = None) -> Artifact | None:
        """The first listed artifact of ``kind`` (and ``precision`` if given), or None."""
        for a in self.artifacts:
            if a.kind == kind and (precision is None or a.precision == precision):
                return a
        return None

    def add_file(self, root: str | Path, file: str, kind: str, precision: str | None,
                 engine: EngineTarget | None = None, notes: str = "") -> Artifact:
        """Checksum ``root/file`` and list it (replacing an entry for the same file)."""
        if kind not in KINDS:
            raise ValueError(f"artifact kind {kind!r} is not one of {KINDS}")
        path = Path(root) / file
        art = Artifact(file, kind, precision, sha256_file(path), path.stat().st_size, engine, notes)
        self.artifacts = [a for a in self.artifacts if a.file != file] + [art]
        return art

    def write(self, root: str | Path) -> Path:
        """Write ``root/manifest.json`` atomically."""
        return atomic_write_text(Path(root) / MANIFEST_NAME, self.to_json())


def rebuild_hint(bundle_dir: str | Path, precision: str | None) -> str:
    """The command that rebuilds an engine for the machine it runs on."""
    p = f" --precision {precision}" if precision else ""
    return f"rebuild it on this machine: edgecalc export WEIGHTS{p} --engine --out {bundle_dir}"


def check_engine_target(artifact: Artifact, current: EngineTarget | None, bundle_dir: str | Path = "BUNDLE") -> None:
    """Raise BundleError unless the engine was built for ``current`` (same GPU model, capability, TensorRT)."""
    if artifact.engine is None:
        raise BundleError(f"{artifact.file}: the manifest does not record the GPU and TensorRT version it was built for; "
                          + rebuild_hint(bundle_dir, artifact.precision))
    if current is None:
        raise BundleError(f"{artifact.file}: cannot use a TensorRT engine here (no TensorRT or no GPU found)")
    built = artifact.engine
    diffs = []
    if built.gpu_name != current.gpu_name:
        diffs.append(f"GPU {built.gpu_name!r} (this machine: {current.gpu_name!r})")
    if built.compute_capability != current.compute_capability:
        diffs.append(f"compute capability {built.compute_capability} (this machine: {current.compute_capability})")
    if built.tensorrt_version != current.tensorrt_version:
        diffs.append(f"TensorRT {built.tensorrt_version} (this machine: {current.tensorrt_version})")
    if diffs:
        raise BundleError(f"{artifact.file} was built for " + ", ".join(diffs)
                          + "; TensorRT engines are not portable across GPU models or TensorRT versions: "
                          + rebuild_hint(bundle_dir, artifact.precision))


def current_engine_target() -> EngineTarget | None:
    """This machine's GPU + TensorRT, or None when either is missing (imports tensorrt lazily)."""
    from edgecalc.runtime.engine.backends.base import BackendUnavailable
    from edgecalc.runtime.engine.backends.tensorrt_backend import (
        import_cudart,
        import_tensorrt,
    )

    try:
        trt, cudart = import_tensorrt(), import_cudart()
    except BackendUnavailable:
        return None
    err, props = cudart.cudaGetDeviceProperties(0)
    if int(err) != 0:
        return None
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return EngineTarget(name.rstrip("\x00"), f"{props.major}.{props.minor}", trt.__version__)


@dataclass
class Bundle:
    """A loaded bundle: its folder and manifest."""

    root: Path
    manifest: Manifest

    def path(self, kind: str, precision: str | None = None) -> Path:
        """Path of an artifact; BundleError naming what the bundle has when it is absent."""
        art = self.manifest.artifact(kind, precision)
        if art is None:
            have = ", ".join(f"{a.kind}/{a.precision}" for a in self.manifest.artifacts) or "nothing"
            raise BundleError(f"bundle {self.root} has no {kind} artifact"
                              + (f" at {precision}" if precision else "") + f" (it has: {have})")
        return self.root / art.file

    def engine_path(self, precision: str, current: EngineTarget | None | str = "probe") -> Path:
        """The engine for ``precision``, refused unless built for this GPU and TensorRT (``current``)."""
        path = self.path("engine", precision)
        art = self.manifest.artifact("engine", precision)
        target = current_engine_target() if current == "probe" else current
        check_engine_target(art, target, self.root)  # type: ignore[arg-type]
        return path

    @property
    def input_size(self) -> int:
        return int(self.manifest.input["shape"][-1])

    @property
    def threshold(self) -> float:
        return float(self.manifest.decision["threshold"])


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


def verify_files(root: Path, manifest: Manifest) -> None:
    """Every listed file exists and matches its size and sha256; BundleError names the first that does not."""
    for art in manifest.artifacts:
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
        if path.stat().st_size != art.size:
            raise BundleError(f"{art.file} has changed: {path.stat().st_size} bytes, the manifest says {art.size}")
        if sha256_file(path) != art.sha256:
            raise BundleError(f"{art.file} has changed: its sha256 does not match the manifest "
                              "(corrupt copy or edited file; re-export the bundle)")
        if art.kind == "onnx":
            check_onnx_file(path, strict=False)


def load_bundle(bundle_dir: str | Path, verify: bool = True) -> Bundle:
    """Read ``bundle_dir/manifest.json`` and (by default) check every listed file's checksum."""
    root = Path(bundle_dir)
    mpath = root / MANIFEST_NAME
    if not root.is_dir():
        raise BundleError(f"bundle folder {root} does not exist")
    if not mpath.is_file():
        raise BundleError(f"{mpath} not found: {root} is not an edgecalc export bundle")
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{mpath} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BundleError(f"{mpath} holds a JSON {type(data).__name__}, not an object")
    try:
        manifest = Manifest.from_dict(data)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # wrong types anywhere in the manifest
        raise BundleError(f"{mpath}: {exc}") from exc
    if verify:
        verify_files(root, manifest)
    return Bundle(root, manifest)
