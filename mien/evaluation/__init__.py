"""Evaluation: metrics (pure numpy), scoring a classifier on a dataset, reports, comparisons."""
