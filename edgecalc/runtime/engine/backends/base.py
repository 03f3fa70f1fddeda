"""The one interface every inference engine offers the runtime: load a model file, infer a batch.

Shaped like NVIDIA's `common_runtime.py` engine wrapper: buffers and bindings are the backend's
business; the caller hands over a float32 NCHW batch and gets the named outputs back as numpy
arrays (``mask``, ``score``, ``attention`` for CS-AGnet bundles).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class BackendUnavailable(RuntimeError):
    """This backend cannot run here; the message names the missing piece."""


class InferenceBackend(ABC):
    """A loaded model. Subclasses set `name`, `precision`, `input_name`, `output_names`."""

    name: str = "?"
    precision: str = "fp32"
    input_name: str = "image"
    output_names: tuple[str, ...] = ()
    #: The model call runs on a GPU, leaving the CPU free meanwhile: the live loop then overlaps it
    #: with the next frame's crop and the last frame's overlay (``LiveOptions(pipelined=None)``).
    on_gpu: bool = False

    @abstractmethod
    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run one float32 (N, C, H, W) batch; return every output by name as float32 numpy."""

    def close(self) -> None:
        """Release engine resources (device memory, sessions)."""

    def describe(self) -> str:
        return f"{self.name} {self.precision}"

    def __enter__(self) -> "InferenceBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def as_input_batch(batch: np.ndarray) -> np.ndarray:
    """Validate and make contiguous float32 NCHW, raising ValueError with the offending shape."""
    arr = np.asarray(batch)
    if arr.ndim != 4:
        raise ValueError(f"expected an NCHW batch, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)
