"""The model's export bundle: its ``Manifest``, loading and the engine compatibility check (no torch).

An export bundle is a folder written by ``edgecalc export``::

    BUNDLE/manifest.json        this file's ``Manifest``: model, input, preprocessing, outputs, checksums
    BUNDLE/model.ts             TorchScript (traced, frozen) for LibTorch
    BUNDLE/model.fp32.onnx      float32 ONNX, opset 17, dynamic batch
    BUNDLE/model.fp16.onnx      FP16 compute, float32 inputs/outputs       (--precision fp16)
    BUNDLE/model.int8.onnx      explicit Q/DQ, symmetric INT8              (--precision int8)
    BUNDLE/model.<p>.engine     TensorRT engine for one GPU + TensorRT     (--engine)
    BUNDLE/parity.json          every artifact against eager float32
    BUNDLE/focus_verifier.safetensors   the focus verifier's trees (``edgecalc fit-verifier``; optional,
                                the manifest's ``focus_verifier`` entry: threshold, features, provenance)

Export writes through the same ``Manifest`` class the runtime reads, so the two cannot drift: this
module is the one definition, and it lives in the runtime because the runtime must not import the
export code (which needs torch). The envelope (``kind`` "model", ``format``, the ``artifacts`` with
their checksums) and the file checks are the ones every bundle shares (``manifest.py``, also read by
the nodule locator): ``load_bundle`` refuses a bundle whose listed files are missing or changed, a
locator bundle, or an ONNX file whose external data lies outside its folder, naming the file;
``Bundle.engine_path`` refuses an engine built for another GPU or TensorRT version and says how to
rebuild it. Format-1 manifests (no ``kind``) still load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecalc.runtime.engine.manifest import (  # noqa: F401  (re-exported: the model bundle's names)
    KINDS,
    MANIFEST_NAME,
    Artifact,
    BundleError,
    FORMATS,
    EngineTarget,
    artifact_for,
    artifacts_from,
    check_onnx_file,
    onnx_external_locations,
    read_manifest_doc,
    sha256_file,
    verify_files,
    write_manifest,
)

MANIFEST_FORMAT = FORMATS["model"]


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
    #: the focus verifier fitted on this model's probabilities (``edgecalc.runtime.focus_verifier``); None: none
    focus_verifier: dict[str, Any] | None = None
    format: int = MANIFEST_FORMAT
    kind: str = "model"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["artifacts"] = [a.to_dict() for a in self.artifacts]
        return {"kind": d.pop("kind"), "format": d.pop("format"), **d}  # the envelope first, for a reader

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
        d["artifacts"] = artifacts_from(d.get("artifacts", []))
        if d.get("format", MANIFEST_FORMAT) > MANIFEST_FORMAT:
            raise BundleError(f"manifest format {d['format']} is newer than this edgecalc reads ({MANIFEST_FORMAT})")
        d.setdefault("format", 1)  # no format, no kind: the first manifests
        d["kind"] = d.get("kind", "model")
        if d["kind"] != "model":
            raise BundleError(f"manifest is of kind {d['kind']!r}, not 'model'")
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
        art = artifact_for(root, file, kind, precision, engine, notes)
        self.artifacts = [a for a in self.artifacts if a.file != file] + [art]
        return art

    def write(self, root: str | Path) -> Path:
        """Write ``root/manifest.json`` atomically, through the writer every bundle uses."""
        return write_manifest(root, self.to_dict())


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


def load_bundle(bundle_dir: str | Path, verify: bool = True) -> Bundle:
    """Read ``bundle_dir/manifest.json`` and (by default) check every listed file's checksum."""
    root = Path(bundle_dir)
    data = read_manifest_doc(root, "model")
    mpath = root / MANIFEST_NAME
    try:
        manifest = Manifest.from_dict(data)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # wrong types anywhere in the manifest
        raise BundleError(f"{mpath}: {exc}") from exc
    if verify:
        verify_files(root, manifest.artifacts, "model")
    return Bundle(root, manifest)
