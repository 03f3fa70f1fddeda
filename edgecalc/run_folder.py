"""The names of a training run folder: the one home that train, eval, sweep, compare and export read.

Kept at the top of the package, below both ``train`` and ``eval``, so evaluation can find a run's
files without importing the training code (which imports evaluation for its final test-fold score).
"""

CONFIG_FILE = "config.json"
SPLIT_FILE = "split.json"
FINAL_WEIGHTS = "final.safetensors"
METRICS_FILE = "metrics.json"
