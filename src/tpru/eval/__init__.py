"""Evaluation: benchmarks, the resumable runner and reports."""
