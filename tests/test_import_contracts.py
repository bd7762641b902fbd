"""The import contracts of pyproject.toml (run by `make lint`): they cover every module of the pipeline, let the
allowed directions pass and break on each forbidden one.

The contracts are checked here on a small tree of packages laid out like the project's, so each forbidden import
is shown to break its contract without touching the project's own code.
"""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from cli.app import SIMULATOR

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def _modules(contract: dict[str, object], key: str) -> list[str]:
    """A contract's list of modules under `key` (source_modules, forbidden_modules, layers); none without it."""
    modules = contract.get(key, [])
    assert isinstance(modules, list)
    return [str(m) for m in modules]


def test_the_simulator_contract_covers_the_pipeline_and_names_the_simulators_package() -> None:
    contract = _contracts()["pipeline-runs-no-simulator"]
    assert set(_modules(contract, "source_modules")) == {"assets", "pipelines"}
    assert _modules(contract, "forbidden_modules") == [SIMULATOR]  # the package `fleetlake provider` runs


def _tree(root: Path, imports: dict[str, str]) -> None:
    """Empty packages for every module the contracts name, and `imports`: module -> the source of its file."""
    # The contract's one allowed exception (its ignore_imports), as the real pipelines.config has it.
    imports = {"pipelines.config": "import dagster\n", **imports}
    modules = {"cli", "assets", "pipelines", "assets.launch", *imports}
    for contract in _contracts().values():
        modules.update(_modules(contract, "source_modules"))
        own = [m for m in _modules(contract, "forbidden_modules") if m.split(".")[0] in ("cli", "assets", "pipelines")]
        modules.update(own)  # a module of the project a contract forbids (the insurance trips') must exist
    for module in sorted(modules):
        parts = module.split(".")
        for depth in range(1, len(parts)):
            package = root.joinpath(*parts[:depth])
            package.mkdir(exist_ok=True)
            (package / "__init__.py").touch()
        package = root.joinpath(*parts)
        if module in imports:
            package.parent.mkdir(parents=True, exist_ok=True)
            package.with_suffix(".py").write_text(imports[module])
        elif not package.with_suffix(".py").exists():
            package.mkdir(exist_ok=True)
            (package / "__init__.py").touch()


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(PYPROJECT), "--no-cache", "--no-logo"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_allowed_directions_keep_every_contract(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "cli.app": "import assets.launch\nimport fleetlake_provider\nimport pipelines.warehouse\nimport rich\n",
            "assets.launch": "import dagster\nimport pipelines.warehouse\n",
            "pipelines.warehouse.build": "import pipelines.lake\n",
            "assets.insurance": "import pipelines.insurance.trips\n",
            "pipelines.insurance.trips": "import pipelines.lake\n",
        },
    )
    result = _lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_each_forbidden_import_breaks_its_contract(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "pipelines.warehouse.window": "import assets.launch\n",
            "pipelines.lake.store": "import dagster\n",
            "pipelines.reports.html": "from rich.console import Console\n",
            "pipelines.warehouse.build": "from fleetlake_provider import clock\n",
            "assets.launch": "import cli.app\n",
            "cli.app": "",
            "pipelines.reports.tables": "from pipelines.insurance import trips\n",
        },
    )
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 4 broken" in result.stdout
    for line in (
        "pipelines.warehouse.window -> assets.launch",
        "assets.launch -> cli.app",
        "pipelines.lake.store -> dagster",
        "pipelines.reports.html -> rich",
        "pipelines.warehouse.build -> fleetlake_provider",
        "pipelines.reports.tables -> pipelines.insurance",
    ):
        assert line in result.stdout, line
