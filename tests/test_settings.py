"""One settings object: every variable read and checked in one place, a bad value named with what it takes, the
embedded provider's credentials never sent elsewhere, the Dagster resources configured from the settings, and
README.md's table and .env.example naming exactly the settings there are."""

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dotenv import dotenv_values

from assets.resources import LakeStore, VoiApi, WarehouseStore, resources_for
from assets.schedules import mds_hourly_schedule
from cli.errorlog import log_file
from fleetlake_provider.app import Credentials
from fleetlake_provider.cli import FAULTS_ENV
from pipelines.config import Secret, Settings, SettingsError

REPO = Path(__file__).resolve().parents[1]
PROVIDER_VARIABLES = {FAULTS_ENV}
"""Read by the embedded provider's command line itself (it is a program of its own), not by the pipeline."""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting from the caller's shell, and no .env: the working directory is an empty folder."""
    for name in Settings.variables().values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("FLEETLAKE_MAX_PAGES", "abc", "FLEETLAKE_MAX_PAGES must be a positive whole number, got 'abc'"),
        ("FLEETLAKE_MAX_PAGES", "2.5", "FLEETLAKE_MAX_PAGES must be a positive whole number, got '2.5'"),
        ("FLEETLAKE_MAX_PAGES", "0", "FLEETLAKE_MAX_PAGES must be a positive whole number, got '0'"),
        ("FLEETLAKE_LOOKBACK_HOURS", "-1", "FLEETLAKE_LOOKBACK_HOURS must be a whole number, 0 or more, got '-1'"),
        (
            "FLEETLAKE_MAX_RESPONSE_BYTES",
            "1000",
            "FLEETLAKE_MAX_RESPONSE_BYTES must be a whole number of at least 1024, got '1000'",
        ),
        (
            "FLEETLAKE_REQUEST_DEADLINE_SECONDS",
            "0.5",
            "FLEETLAKE_REQUEST_DEADLINE_SECONDS must be a number of at least 1, got '0.5'",
        ),
        ("FLEETLAKE_IDLE_LIMIT_HOURS", "abc", "FLEETLAKE_IDLE_LIMIT_HOURS must be a number, 0 or more, got 'abc'"),
        ("FLEETLAKE_IDLE_LIMIT_HOURS", "nan", "FLEETLAKE_IDLE_LIMIT_HOURS must be a number, 0 or more, got 'nan'"),
        ("FLEETLAKE_IDLE_LIMIT_HOURS", "inf", "FLEETLAKE_IDLE_LIMIT_HOURS must be a number, 0 or more, got 'inf'"),
        (
            "FLEETLAKE_MAX_RUNTIME_SECONDS",
            "0",
            "FLEETLAKE_MAX_RUNTIME_SECONDS must be a positive whole number of seconds, got '0'",
        ),
        ("FLEETLAKE_HISTORY_START", "2024-13-01", "FLEETLAKE_HISTORY_START must be a date, YYYY-MM-DD, got '2024-13"),
        ("VOI_API_BASE_URL", "127.0.0.1:8400", "VOI_API_BASE_URL must be an http:// or https:// URL, got '127.0.0.1"),
        ("VOI_MAAS_BASE_URL", "ftp://zones", "VOI_MAAS_BASE_URL must be an http:// or https:// URL, got 'ftp://zones'"),
        (
            "FLEETLAKE_GBFS_SNAPSHOT_CRON",
            "*/5 * * *",
            "FLEETLAKE_GBFS_SNAPSHOT_CRON must be a cron schedule of five fields, e.g. '*/5 * * * *', got '*/5 * * *' "
            "(not a cron schedule Dagster reads)",
        ),
        (
            "FLEETLAKE_WAREHOUSE_MEMORY",
            "lots",
            "FLEETLAKE_WAREHOUSE_MEMORY must be a DuckDB memory limit, e.g. '3GB' or '512MiB', got 'lots' "
            "(not a memory size DuckDB reads)",
        ),
        (
            "FLEETLAKE_ZONE_TIMEZONES",
            "1=Europe/Stockholm",
            "FLEETLAKE_ZONE_TIMEZONES must be zone:Area/City pairs separated by commas, e.g. "
            "'1:Europe/Stockholm,145:Europe/Berlin', got '1=Europe/Stockholm' ('1=Europe/Stockholm' is not "
            "zone:Area/City)",
        ),
        (
            "FLEETLAKE_ZONE_TIMEZONES",
            "1:Europe/Stockholm,9:Europe/Atlantis",
            "got '1:Europe/Stockholm,9:Europe/Atlantis' (zone 9: 'Europe/Atlantis' is not an IANA time zone)",
        ),
    ],
)
def test_a_bad_value_names_its_variable_what_it_takes_and_what_it_got(
    name: str, value: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        Settings.from_env()
    assert says in str(refused.value)
    assert "\n" not in str(refused.value)


def test_every_bad_variable_is_named_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETLAKE_MAX_PAGES", "many")
    monkeypatch.setenv("FLEETLAKE_LEAD_IN_HOURS", "two days")
    with pytest.raises(SettingsError) as refused:
        Settings.from_env()
    assert str(refused.value) == (
        "FLEETLAKE_MAX_PAGES must be a positive whole number, got 'many'; "
        "FLEETLAKE_LEAD_IN_HOURS must be a whole number, 0 or more, got 'two days'"
    )


def test_values_are_read_typed_and_blank_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "FLEETLAKE_MAX_PAGES": " 40 ",
        "FLEETLAKE_ZONES": " 1, 145,",
        "FLEETLAKE_ZONE_TIMEZONES": "1:Europe/Stockholm, 145:Europe/Berlin",
        "FLEETLAKE_HISTORY_START": "2019-03-01",
        "FLEETLAKE_MAX_RUNTIME_SECONDS": "",  # as .env.example leaves it: unset
        "FLEETLAKE_IDLE_LIMIT_HOURS": "   ",
        "FLEETLAKE_POLICY_DIR": "policies",
        "VOI_API_BASE_URL": "http://localhost:8400/",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings.max_pages == 40
    assert settings.zones == ("1", "145")
    assert settings.zone_timezones == {"1": "Europe/Stockholm", "145": "Europe/Berlin"}
    assert settings.history_start == date(2019, 3, 1)
    assert settings.max_runtime_s is None
    assert settings.idle_limit_hours == 72.0
    assert settings.policy_dir == Path("policies")
    # The zone API defaults to the light-integration API, without its trailing slash.
    assert settings.api_base_url == settings.maas_base_url == "http://localhost:8400"


def test_settings_built_in_code_never_read_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLEETLAKE_MAX_PAGES", "7")
    (tmp_path / ".env").write_text("FLEETLAKE_LOOKBACK_HOURS=2\n")
    built = Settings(zones=("1",))
    assert (built.max_pages, built.lookback_hours, built.zones) == (1000, 6, ("1",))
    read = Settings.from_env()
    assert (read.max_pages, read.lookback_hours) == (7, 2)
    # Checked all the same: a bad value given in code (or from Dagster's launchpad) names its variable.
    with pytest.raises(SettingsError, match=re.escape("FLEETLAKE_MAX_PAGES must be a positive whole number, got 0")):
        Settings(max_pages=0)


def test_the_env_file_is_read_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "FLEETLAKE_LOOKBACK_HOURS=3   # a comment\n"
        "FLEETLAKE_MAX_PAGES=50\n"
        "DAGSTER_HOME=/somewhere\n"  # other programs' variables are not the pipeline's business
        "FLEETLAKE_PROVIDER_FAULTS=all\n"
    )
    monkeypatch.setenv("FLEETLAKE_MAX_PAGES", "60")
    settings = Settings.from_env()
    assert (settings.lookback_hours, settings.max_pages) == (3, 60)
    (tmp_path / ".env").write_text("FLEETLAKE_LOOKBACK_HOURS=three\n")
    with pytest.raises(SettingsError, match="FLEETLAKE_LOOKBACK_HOURS must be a whole number, 0 or more, got 'three'"):
        Settings.from_env()


@pytest.mark.parametrize("url", ["https://api.voi.example", "http://10.0.0.5:8400", "http://provider"])
def test_the_simulator_credentials_are_refused_off_this_machine(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOI_API_BASE_URL", url)
    monkeypatch.setenv("VOI_AUTH_TOKEN", "a-token-the-provider-issued")
    with pytest.raises(SettingsError) as refused:
        Settings.from_env()
    assert str(refused.value) == (
        f"VOI_API_BASE_URL is {url}, not this machine, but VOI_CLIENT_SECRET is the embedded provider's default: "
        "set VOI_CLIENT_SECRET to the credential the provider issued you, or point VOI_API_BASE_URL at the "
        "embedded provider on 127.0.0.1"
    )
    # With the provider's own secret it is a real configuration.
    monkeypatch.setenv("VOI_CLIENT_SECRET", "a-secret-the-provider-issued")
    assert Settings.from_env().api_base_url == url


def test_the_zone_api_token_is_refused_off_this_machine_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOI_MAAS_BASE_URL", "https://zones.voi.example")
    with pytest.raises(SettingsError, match=re.escape("VOI_MAAS_BASE_URL is https://zones.voi.example, not this")):
        Settings.from_env()
    monkeypatch.setenv("VOI_AUTH_TOKEN", "a-token-the-provider-issued")
    assert Settings.from_env().maas_base_url == "https://zones.voi.example"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8400", "http://127.0.0.2:9000", "http://localhost", "http://[::1]:1"]
)
def test_the_simulator_credentials_are_fine_on_this_machine(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOI_API_BASE_URL", url)
    settings = Settings.from_env()
    assert settings.client_secret == Secret("fleetlake-secret")
    assert settings.maas_base_url == url


def test_settings_built_in_code_may_name_an_in_process_provider() -> None:
    """Tests and benchmarks serve the simulator through an ASGI transport under a made-up host: deliberate."""
    assert Settings(api_base_url="http://provider").maas_base_url == "http://provider"


def test_the_resources_are_configured_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        api_base_url="http://127.0.0.1:9",
        zones=("1", "145"),
        lake_dir=tmp_path / "lake",
        warehouse=tmp_path / "w.duckdb",
        reports_dir=tmp_path / "reports",
        max_pages=40,
        not_ready_retry_s=0,
        not_ready_max_retries=2,
        warehouse_memory="512MiB",
        duckdb_threads=3,
        lead_in_hours=6,
        policy_dir=tmp_path / "policies",
        idle_limit_hours=24,
        zone_timezones={"1": "Europe/Stockholm"},
    )
    resources = resources_for(settings)
    voi, lake, store = resources["voi"], resources["lake"], resources["warehouse"]
    assert isinstance(voi, VoiApi) and isinstance(lake, LakeStore) and isinstance(store, WarehouseStore)
    api = voi.settings()
    assert (api.api_base_url, api.maas_base_url, api.zones, api.max_pages) == (
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        ("1", "145"),
        40,
    )
    assert api.client_secret == Secret("fleetlake-secret")
    assert (voi.not_ready_retry_s, voi.not_ready_max_retries) == (0, 2)
    assert lake.lake().root == tmp_path / "lake"
    assert resources["reports"].path() == tmp_path / "reports"
    warehouse = store.warehouse(tmp_path / "lake")
    assert warehouse.path == tmp_path / "w.duckdb" and warehouse.lake_dir == tmp_path / "lake"
    assert warehouse.lead_in_hours == 6
    assert warehouse.settings.policy_dir == tmp_path / "policies"
    assert warehouse.settings.idle_limit_hours == 24
    assert warehouse.settings.zone_timezones == {"1": "Europe/Stockholm"}
    with warehouse.connect() as con:  # DuckDB is given the memory limit and the threads
        assert con.execute("select current_setting('memory_limit')").fetchone() == ("512.0 MiB",)
        assert con.execute("select current_setting('threads')").fetchone() == (3,)
    with duckdb.connect() as default, warehouse.connect(read_only=True) as con:  # a reader keeps DuckDB's default
        assert (
            con.execute("select current_setting('threads')").fetchone()
            == default.execute("select current_setting('threads')").fetchone()
        )


def test_the_warehouse_catalog_reaches_the_build_as_its_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared catalog's URL may hold a password: the resources hold its variable, and the build its value."""
    url = "postgresql://fleetlake:a-password@db.internal:5432/dagster"
    monkeypatch.setenv("FLEETLAKE_WAREHOUSE_CATALOG", url)
    store = resources_for(Settings.from_env(), secrets_as_env_vars=True)["warehouse"]
    assert isinstance(store, WarehouseStore)
    assert isinstance(store.warehouse_catalog, dg.EnvVar)
    assert store.warehouse_catalog.env_var_name == "FLEETLAKE_WAREHOUSE_CATALOG"
    assert resources_for(Settings.from_env())["warehouse"].warehouse_catalog == url
    seen: dict[str, str] = {}

    @dg.asset
    def probe(warehouse: WarehouseStore) -> None:
        shared = warehouse.warehouse(Path("lake")).shared
        seen["dsn"] = "" if shared is None else shared.dsn

    assert dg.materialize([probe], resources={"warehouse": store}).success
    assert seen == {"dsn": url}


def test_a_credential_from_the_environment_reaches_a_run_as_its_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    """The code location's resources hold the variable, not its value (the UI shows resource configuration); the
    run resolves it when it starts. An unset credential is the simulator's published default."""
    monkeypatch.setenv("VOI_CLIENT_SECRET", "issued-client-secret")
    resources = resources_for(Settings.from_env(), secrets_as_env_vars=True)
    voi = resources["voi"]
    assert isinstance(voi, VoiApi)
    assert isinstance(voi.client_secret, dg.EnvVar) and voi.client_secret.env_var_name == "VOI_CLIENT_SECRET"
    assert voi.auth_token == "fleetlake-maas-token"
    seen: dict[str, str] = {}

    @dg.asset
    def probe(voi: VoiApi) -> None:
        settings = voi.settings()
        seen["secret"] = settings.client_secret.reveal()
        seen["token"] = settings.auth_token.reveal()

    monkeypatch.setenv("VOI_CLIENT_SECRET", "rotated-client-secret")  # resolved at run time, not at load
    assert dg.materialize([probe], resources={"voi": voi}).success
    assert seen == {"secret": "rotated-client-secret", "token": "fleetlake-maas-token"}


def test_the_hourly_schedule_names_a_bad_lookback_at_its_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 3, 29, 6, 5, tzinfo=UTC))
    monkeypatch.setenv("FLEETLAKE_LOOKBACK_HOURS", "2")
    request = mds_hourly_schedule(context)
    assert isinstance(request, dg.RunRequest)
    assert request.tags["dagster/asset_partition_range_start"] == "2026-03-29-04:00"
    monkeypatch.setenv("FLEETLAKE_LOOKBACK_HOURS", "6.5")
    with pytest.raises(SettingsError, match=re.escape("FLEETLAKE_LOOKBACK_HOURS must be a whole number, 0 or more")):
        mds_hourly_schedule(context)


@pytest.mark.integration
def test_the_code_location_refuses_to_load_with_a_bad_setting_naming_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in Settings.variables().values()}
    env |= {"FLEETLAKE_GBFS_SNAPSHOT_CRON": "every five minutes", "PYTHONPATH": str(REPO)}
    loaded = subprocess.run(
        [sys.executable, "-c", "import assets.definitions"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 1
    assert loaded.stderr.strip().splitlines()[-1] == (
        "pipelines.config.SettingsError: FLEETLAKE_GBFS_SNAPSHOT_CRON must be a cron schedule of five fields, e.g. "
        "'*/5 * * * *', got 'every five minutes' (not a cron schedule Dagster reads)"
    )


def test_the_log_file_is_the_default_when_the_settings_cannot_be_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETLAKE_LOG_FILE", "elsewhere/fleetlake.log")
    assert log_file() == Path("elsewhere/fleetlake.log")
    monkeypatch.setenv("FLEETLAKE_MAX_PAGES", "many")
    assert log_file() == Path("data/fleetlake.log")


def readme_variables() -> set[str]:
    """The variables README.md's configuration table names (first column)."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_the_readme_table_lists_every_setting_and_no_other() -> None:
    assert readme_variables() == set(Settings.variables().values()) | PROVIDER_VARIABLES


def test_the_env_example_lists_every_setting_with_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    example = REPO / ".env.example"
    assert set(dotenv_values(example)) == set(Settings.variables().values()) | PROVIDER_VARIABLES
    # Read as a .env file, it gives exactly the defaults: copying it changes nothing.
    assert Settings.from_env(env_file=example).model_dump() == Settings().model_dump()


def test_the_refused_credentials_are_the_embedded_providers_own() -> None:
    """The loopback rule knows the simulator's defaults without importing it (a production install lacks it)."""
    provider, client = Credentials(), Settings()
    assert (client.client_id, client.client_secret, client.auth_token) == (
        provider.client_id,
        Secret(provider.client_secret),
        Secret(provider.auth_token),
    )


@pytest.mark.integration
def test_reading_unset_settings_loads_neither_dagster_nor_duckdb(tmp_path: Path) -> None:
    """Only a value that is set is judged by Dagster's or DuckDB's parser: the defaults are the module's own, so a
    command that needs neither does not pay for loading them."""
    env = {k: v for k, v in os.environ.items() if k not in Settings.variables().values()} | {"PYTHONPATH": str(REPO)}
    script = (
        "import sys; from pipelines.config import Settings; Settings.from_env(); "
        "print(sorted(m for m in ('dagster', 'duckdb') if m in sys.modules))"
    )
    read = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "[]"
