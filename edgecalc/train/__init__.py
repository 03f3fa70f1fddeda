"""Two-stage collaborative semi-supervised training and its losses (PyTorch)."""
