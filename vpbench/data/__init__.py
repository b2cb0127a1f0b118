"""Helpers for dataset plugins: the data root and the bouncing-digits generator."""
