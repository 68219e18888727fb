"""Data, windows, metrics, search spaces and the per-model two-stage evaluators."""
