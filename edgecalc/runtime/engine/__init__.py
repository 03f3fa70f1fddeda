"""Stage 3 of a frame: the model call. ``bundle`` (the export bundle: manifest, checksums, which file
serves which backend and precision), ``backends/`` (onnxruntime, OpenVINO, TensorRT, TorchScript
behind one ``InferenceBackend.infer``), ``select`` (a named backend, or ``auto`` = the fastest usable
here) and ``latency_cache`` (what ``edgecalc bench`` measured on this machine). Next stage: ``runtime/live``."""
