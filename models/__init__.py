"""Inference-only Kronos and Toto in pure PyTorch, and their checkpoint loading."""
