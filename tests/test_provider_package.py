"""The embedded provider is a distribution of its own (pipelines/provider/, package fleetlake_provider): it knows
nothing of the pipeline, the pipeline reaches it only where the command line starts it, and without it installed
everything else still runs while its commands say in one line what is missing."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app

ROOT = Path(__file__).resolve().parents[1]
MEMBER = ROOT / "pipelines" / "provider"
COMMAND_LINE = {"cli/app.py", "cli/demo.py"}
"""The only modules that may import the simulator: the commands that start it."""


def imported_modules(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def roots(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def test_the_member_is_laid_out_as_its_own_distribution() -> None:
    assert (MEMBER / "pyproject.toml").is_file()
    assert (MEMBER / "src" / "fleetlake_provider" / "__init__.py").is_file()
    # No package pipelines.provider: the root wheel's packages would otherwise carry the simulator.
    assert not (MEMBER / "__init__.py").exists()
    assert not list(MEMBER.glob("*.py"))


def test_the_simulator_imports_nothing_of_the_pipeline() -> None:
    modules = sorted((MEMBER / "src").rglob("*.py"))
    assert len(modules) >= 10
    for module in modules:
        assert not roots(imported_modules(module)) & {"pipelines", "assets"}, module.relative_to(ROOT)


def test_the_pipeline_reaches_the_simulator_only_from_the_command_line() -> None:
    importers = set()
    for folder in ("cli", "assets", "pipelines"):
        for module in (ROOT / folder).rglob("*.py"):
            if MEMBER in module.parents:
                continue
            if "fleetlake_provider" in roots(imported_modules(module)):
                importers.add(str(module.relative_to(ROOT)))
    assert importers <= COMMAND_LINE, importers - COMMAND_LINE
    # The command line imports it inside the commands that start it, so every other command runs without it.
    assert "fleetlake_provider" not in roots(imported_modules(ROOT / "cli" / "app.py", top_level_only=True))


def test_the_provider_command_hands_its_arguments_to_the_providers_own_command_line() -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["provider", "--help"])
    assert result.exit_code == 0, result.output
    assert "fleetlake provider [OPTIONS] COMMAND" in result.output
    assert "serve" in result.output and "truth" in result.output


@pytest.mark.parametrize("command", [["provider", "serve", "--port", "0"], ["demo"]])
def test_without_the_simulator_its_commands_say_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setitem(sys.modules, "fleetlake_provider", None)  # what an install without it finds
    result = CliRunner(env={"COLUMNS": "400"}).invoke(app, command)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert f"`fleetlake {command[0]}` runs the embedded provider, the fleetlake-provider distribution" in lines[0]
    assert "`uv sync` installs it" in lines[0]


END_OF_COMMAND = "--- fleetlake exited with"
WITHOUT_SIMULATOR = f"""
import sys

# An install without the simulator: its source folder is not on the path.
sys.path = [p for p in sys.path if not p.rstrip("/").endswith("pipelines/provider/src")]
import assets.definitions
from cli.app import main

for command in sys.argv[1:]:  # one command line each, run in turn, each followed by its exit code
    sys.argv = ["fleetlake", *command.split()]
    try:
        main()
        code = 0
    except SystemExit as exit:
        code = exit.code or 0
    print(f"{END_OF_COMMAND} {{code}}", file=sys.stderr, flush=True)
"""
"""The code location loaded, then each command as `fleetlake` runs it, in one process (a start of its own for each
command would load Dagster, Polars and DuckDB again, seconds each, for nothing the test looks at)."""


@pytest.mark.integration
@pytest.mark.slow
def test_the_code_location_and_the_command_line_load_without_the_simulator(tmp_path: Path) -> None:
    """A production install leaves the simulator out: Dagster's definitions load and other commands run."""

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FLEETLAKE_LAKE_DIR": str(tmp_path / "lake")}
    commands = ["build", "provider serve"]
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_SIMULATOR, *commands],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    said = re.split(rf"^{re.escape(END_OF_COMMAND)} (\d+)$\n", done.stderr, flags=re.MULTILINE)
    assert len(said) == 2 * len(commands) + 1 and said[-1] == "", done.stderr
    (build, build_code), (serve, serve_code) = zip(said[0:-1:2], map(int, said[1::2]), strict=True)
    assert build_code == 1, build
    assert "no lake at" in build and "fleetlake-provider" not in build
    assert serve_code == 2, serve
    assert "the fleetlake-provider distribution, which is not installed here" in serve


def test_a_bad_fault_setting_names_its_variable() -> None:
    """The provider reads FLEETLAKE_PROVIDER_FAULTS itself; a value it cannot read is refused before it serves."""
    runner = CliRunner(env={"COLUMNS": "400", "FLEETLAKE_PROVIDER_FAULTS": "server_error=0.1"})
    # An unusable host as well: should the faults pass, binding fails at once instead of serving forever.
    result = runner.invoke(app, ["provider", "serve", "--host", "256.0.0.1", "--vehicles", "2", "--days", "1"])
    assert result.exit_code == 2, result.output
    assert "--faults or FLEETLAKE_PROVIDER_FAULTS: unknown fault 'server_error=0.1'" in result.output
