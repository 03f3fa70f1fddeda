"""`edgecalc doctor`'s backend rows, decided from probes filled by hand: machines this one is not (no torch,
a GPU with TensorRT, OpenVINO without BF16), each row saying why it can or cannot run."""

from __future__ import annotations

from types import SimpleNamespace

from edgecalc.doctor import BackendStatus, Probes, backend_rows, collect_report
from edgecalc.runtime.engine.formats import BACKEND_TABLE


def rows_by(p: Probes) -> dict[tuple[str, str, str], BackendStatus]:
    return {(r.backend, r.precision, r.device): r for r in backend_rows(p)}


def fake(release: str = "1.0", **attrs) -> SimpleNamespace:
    """A stand-in module: its ``__version__`` and whatever else a probe reads."""
    return SimpleNamespace(__version__=release, **attrs)


def test_nothing_installed_every_row_says_what_to_install_and_no_row_is_usable():
    p = Probes(torch_why="not installed", ort_why="not installed", ov_why="not installed", trt_why="not installed",
               cudart_why="not installed", gpu_reason="nvidia-smi not found")
    rows = backend_rows(p)
    assert rows and not any(r.usable for r in rows)
    assert all(r.reason for r in rows)
    torch_rows = [r for r in rows if r.backend in ("pytorch", "torchscript")]
    assert torch_rows and all("not installed" in r.reason and "pip install" in r.reason for r in torch_rows)
    trt = [r for r in rows if r.backend == "tensorrt"]
    assert trt and all("nvidia-smi not found" in r.reason and "cuda-python" in r.reason for r in trt)


def test_every_backend_of_the_one_table_has_a_row():
    rows = backend_rows(Probes(gpu_reason="no GPU"))
    assert {r.backend for r in rows} == {b.name for b in BACKEND_TABLE}


def test_a_gpu_with_tensorrt_and_cuda_python_makes_the_tensorrt_rows_usable():
    p = Probes(gpu="NVIDIA H200", trt=fake("10.9.0"), cudart=object(), ort=fake(get_available_providers=None),
               providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    rows = rows_by(p)
    trt = [r for k, r in rows.items() if k[0] == "tensorrt"]
    assert trt and all(r.usable and "TensorRT 10.9.0 on NVIDIA H200" in r.reason and "builder flags" in r.reason
                       for r in trt)
    cuda_ep = [r for k, r in rows.items() if k[0] == "onnxruntime" and k[2] == "CUDA EP"]
    assert len(cuda_ep) == 1 and cuda_ep[0].usable and cuda_ep[0].reason == "on NVIDIA H200"
    trt_ep = [r for k, r in rows.items() if k[0] == "onnxruntime" and k[2] == "Tensorrt EP"]
    assert len(trt_ep) == 1 and not trt_ep[0].usable and "pip install onnxruntime-gpu" in trt_ep[0].reason
    assert all("strongly typed" in r.reason for r in backend_rows(Probes(gpu="G", trt=fake("11.0"), cudart=object()))
               if r.backend == "tensorrt")


def test_a_cpu_only_torch_build_names_the_gpu_rows_reason():
    torch = fake("2.13.0", version=SimpleNamespace(cuda=None))
    rows = [r for r in backend_rows(Probes(torch=torch, gpu_reason="nvidia-smi not found")) if r.backend == "pytorch"]
    assert any(r.usable and r.device == "cpu" for r in rows)
    gpu_rows = [r for r in rows if r.device != "cpu"]
    assert gpu_rows and all(not r.usable and r.reason == "nvidia-smi not found" for r in gpu_rows)
    no_reason = [r for r in backend_rows(Probes(torch=torch, gpu="G")) if r.backend == "pytorch" and r.device != "cpu"]
    assert no_reason and all(r.reason == "torch is a CPU-only build" for r in no_reason)


def test_openvino_bf16_follows_the_cpus_capabilities():
    def bf16(caps):
        p = Probes(ov=object(), ov_devices=["CPU"], ov_caps=caps)
        return next(r for r in backend_rows(p) if r.backend == "openvino" and r.precision == "bf16")

    assert bf16(["FP32", "BF16"]).usable
    off = bf16(["FP32", "INT8"])
    assert not off.usable and off.reason == "CPU reports no BF16 support"
    none = [r for r in backend_rows(Probes(ov=object(), ov_devices=["GPU"])) if r.backend == "openvino"]
    assert len(none) == 1 and not none[0].usable and "no CPU device" in none[0].reason


def test_this_machines_report_lists_every_library_once_and_rows_from_its_probes():
    rep = collect_report()
    names = [lib.name for lib in rep.libraries]
    assert len(names) == len(set(names))
    assert {"python", "edgecalc", "numpy", "opencv", "torch", "onnxruntime", "openvino", "tensorrt", "pydicom"} <= set(names)
    onnxruntime_cpu = [r for r in rep.backends if r.backend == "onnxruntime" and r.device == "cpu"]
    assert onnxruntime_cpu and all(r.usable for r in onnxruntime_cpu)  # the base install's engine
