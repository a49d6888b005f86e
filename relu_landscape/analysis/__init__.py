"""Polars analysis of a results directory, one module per question (no torch, no ray)."""
