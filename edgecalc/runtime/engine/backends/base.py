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


class BackendClosed(RuntimeError):
    """``infer`` on a backend after its ``close``: the engine's handles are gone."""


class InferenceBackend(ABC):
    """A loaded model. Subclasses set `name`, `precision`, `input_name`, `output_names`; their ``close``
    drops what holds the engine (session, compiled model, device memory) and calls this class's."""

    name: str = "?"
    precision: str = "fp32"
    input_name: str = "image"
    output_names: tuple[str, ...] = ()
    #: The model call runs on a GPU, leaving the CPU free meanwhile: the live loop then overlaps it
    #: with the next frame's crop and the last frame's overlay (``LiveOptions(pipelined=None)``).
    on_gpu: bool = False
    #: Set by ``close``: engine selection closes the engines it tried and did not pick, the live loop its
    #: own on every way out, so a closed one must fail loudly rather than run on stale handles.
    closed: bool = False

    @abstractmethod
    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run one float32 (N, C, H, W) batch; return every output by name as float32 numpy."""

    def close(self) -> None:
        """Release engine resources (device memory, sessions); ``infer`` afterwards raises :class:`BackendClosed`.
        Safe to call more than once."""
        self.closed = True

    def require_open(self) -> None:
        """Raise :class:`BackendClosed` when ``close`` was called (every ``infer`` starts with this)."""
        if self.closed:
            raise BackendClosed(f"the {self.name} backend was closed; open the bundle again to infer")

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
