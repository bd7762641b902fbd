"""The `fleetlake` command line: options, console output and the runs it launches.

The top of the three layers: `cli` drives both `assets` (Dagster's code location, whose jobs it runs in-process)
and `pipelines` (the pipeline itself), and starts the embedded provider for `fleetlake provider` and the demo.
Nothing imports `cli`; `assets` never imports it and `pipelines` imports neither (the contracts in pyproject.toml).
"""
