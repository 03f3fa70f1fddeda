"""TorchScript (the LibTorch artifact): the only backend that imports torch, and only when chosen."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecalc.runtime.engine.backends.base import BackendUnavailable, InferenceBackend, as_input_batch


class TorchScriptBackend(InferenceBackend):
    """A traced, frozen TorchScript module; outputs come back in the bundle's output order."""

    name = "torchscript"

    def __init__(self, model_path: str | Path, *, output_names: tuple[str, ...] = ("mask", "score", "attention"),
                 threads: int = 0, device: str = "cpu") -> None:
        try:
            import torch  # lazy: the runtime stays torch-free unless this backend is picked
        except ImportError as exc:
            raise BackendUnavailable(f"torch is not installed (pip install 'edgecalc[train]'): {exc}") from exc
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"TorchScript module {path} not found")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable("TorchScript on cuda asked for, but torch sees no CUDA GPU")
        if threads:
            torch.set_num_threads(int(threads))
        self._torch = torch
        self.device = torch.device(device)
        self.on_gpu = self.device.type == "cuda"
        self.module = torch.jit.load(str(path), map_location=self.device).eval()
        self.output_names = tuple(output_names)

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        self.require_open()
        torch = self._torch
        with torch.inference_mode():
            outs = self.module(torch.from_numpy(as_input_batch(batch)).to(self.device))
        if not isinstance(outs, (tuple, list)):
            outs = (outs,)
        return {n: o.float().cpu().numpy() for n, o in zip(self.output_names, outs)}

    def close(self) -> None:
        self.module = None  # the module's parameters (on the GPU when device is cuda)
        if self.on_gpu:
            self._torch.cuda.empty_cache()  # hand the freed blocks back to the driver, not only to torch's cache
        super().close()
