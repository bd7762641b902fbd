"""The MDS Metrics API (MDS 2.0 `metrics/`), answered from the warehouse's additive pieces (docs/metrics.md)."""
