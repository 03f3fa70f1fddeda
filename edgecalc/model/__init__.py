"""CS-AGnet and DS-AGnet (PyTorch): the attention-gated U-Net with its classification branch."""
