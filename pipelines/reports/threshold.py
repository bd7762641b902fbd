"""The privacy threshold k of city reports, in a module of its own so that the command line can show it as the
default of `fleetlake export --k` without importing the report code (polars and the rest) to print its help."""

DEFAULT_K = 10
"""Counts from 1 to k-1 are suppressed (MDS Metrics redact below 10); pipelines/reports/privacy.py applies it."""
