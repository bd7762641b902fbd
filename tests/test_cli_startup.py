"""`fleetlake --help` answers without importing what no command has asked for yet: Dagster, Polars, Arrow,
DuckDB, matplotlib, pydantic (the settings) or the report code cost seconds of start-up before the first line."""

import json
import subprocess
import sys

HEAVY = ("dagster", "polars", "pyarrow", "duckdb", "matplotlib", "pydantic", "httpx", "msgspec")
"""Libraries a command imports when it runs, never to print the help."""

PROBE = """
import json, sys
from cli.app import main
sys.argv = ["fleetlake", "--help"]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def test_help_imports_no_heavy_library_and_no_report_code() -> None:
    # A fresh interpreter: this test process has imported everything already.
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    assert "backfill" in done.stdout and "export" in done.stdout  # the help itself was printed
    modules = json.loads(done.stderr.strip().splitlines()[-1])
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []
    # The report code's privacy threshold is the default of `export --k`; nothing else of pipelines.reports.
    assert [m for m in modules if m.startswith("pipelines.reports.")] == ["pipelines.reports.threshold"]
    assert "pipelines.config" not in modules


def test_a_command_reaches_the_provider_before_importing_the_lake_or_dagster() -> None:
    # `fleetlake backfill` reads the settings and asks the provider (cli.preflight) before it imports its run.
    probe = "import json, sys, cli.app, cli.preflight; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    modules = json.loads(done.stdout)
    assert [m for m in modules if m.split(".")[0] in ("dagster", "polars", "pyarrow", "duckdb", "shapely")] == []
