"""Evaluation: classification and segmentation metrics, ROC curves, attention figures."""
