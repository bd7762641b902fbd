"""The command line fails fast and says why: one line naming what to fix, a non-zero exit code, the detail in the
log, before any hour is fetched."""

import re
import socket
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli import app as cli
from pipelines.config import Settings
from tests.conftest import CREDENTIALS

WINDOW = ["--start", "2026-03-28T10:00", "--end", "2026-03-28T12:00"]


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean environment: nothing from the caller's shell, the lake and the log in tmp_path."""
    for name in Settings.variables().values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLEETLAKE_LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("FLEETLAKE_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("FLEETLAKE_LOG_FILE", str(tmp_path / "fleetlake.log"))
    return tmp_path


def invoke(*args: str) -> tuple[Result, float]:
    began = time.perf_counter()
    result = CliRunner().invoke(cli.app, list(args))
    return result, time.perf_counter() - began


def one_line(result: Result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--start", "yesterday", "--end", "2026-03-29"], "--start takes a UTC time in ISO 8601"),
        (["--start", "2026-03-28", "--end", "tomorrow"], "--end takes a UTC time in ISO 8601"),
        (["--start", "2026-03-29", "--end", "2026-03-28"], "--end 2026-03-28 is not after --start 2026-03-29"),
    ],
)
def test_bad_dates_are_one_line_and_exit_2(args: list[str], says: str) -> None:
    result, _ = invoke("backfill", *args)
    assert result.exit_code == 2
    assert says in one_line(result)


NUMERIC_SETTINGS = (
    "FLEETLAKE_REQUEST_DEADLINE_SECONDS",
    "FLEETLAKE_MAX_PAGES",
    "FLEETLAKE_MAX_RETRY_AFTER_SECONDS",
    "FLEETLAKE_MAX_RESPONSE_BYTES",
    "FLEETLAKE_IDLE_LIMIT_HOURS",
    "FLEETLAKE_LOOKBACK_HOURS",
    "FLEETLAKE_NOT_READY_RETRY_SECONDS",
    "FLEETLAKE_NOT_READY_MAX_RETRIES",
    "FLEETLAKE_LEAD_IN_HOURS",
    "FLEETLAKE_MAX_RUNTIME_SECONDS",
)


@pytest.mark.parametrize("name", NUMERIC_SETTINGS)
def test_every_numeric_setting_that_is_not_a_number_is_named(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, "seventy-two")
    for command in (["backfill", *WINDOW], ["build"]):
        result, _ = invoke(*command)
        assert result.exit_code == 2
        line = one_line(result)
        assert re.fullmatch(rf"error: {name} must be (a|a positive) (whole )?number.*, got 'seventy-two'", line), line


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("FLEETLAKE_HISTORY_START", "March 2019", "FLEETLAKE_HISTORY_START must be a date, YYYY-MM-DD, got 'March"),
        ("FLEETLAKE_GBFS_SNAPSHOT_CRON", "every 5 min", "FLEETLAKE_GBFS_SNAPSHOT_CRON must be a cron schedule"),
        ("FLEETLAKE_ZONE_TIMEZONES", "1:Europe/Atlantis", "zone 1: 'Europe/Atlantis' is not an IANA time zone"),
        ("VOI_API_BASE_URL", "api.voi.example", "VOI_API_BASE_URL must be an http:// or https:// URL"),
        (
            "VOI_API_BASE_URL",
            "https://api.voi.example",
            "VOI_API_BASE_URL is https://api.voi.example, not this machine, but VOI_CLIENT_SECRET is the embedded "
            "provider's default",
        ),
    ],
)
def test_every_command_that_reads_settings_refuses_a_bad_one_in_one_line(
    name: str, value: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    for command in (["backfill", *WINDOW], ["build"], ["snapshot"], ["export", "--zone", "1"], ["demo"]):
        result, _ = invoke(*command)
        assert result.exit_code == 2, command
        assert says in one_line(result)


def test_a_wrong_client_secret_stops_before_the_run(
    served: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VOI_API_BASE_URL", served)
    monkeypatch.setenv("VOI_CLIENT_SECRET", "not-the-secret")
    result, seconds = invoke("backfill", *WINDOW)
    assert result.exit_code == 1
    line = one_line(result)
    assert "token request refused with HTTP 401" in line and "check VOI_CLIENT_ID and VOI_CLIENT_SECRET" in line
    assert "not-the-secret" not in line
    assert seconds < 10
    assert not (tmp_path / "lake").exists()
    assert "not-the-secret" not in (tmp_path / "fleetlake.log").read_text()


def test_a_provider_that_is_down_stops_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("VOI_API_BASE_URL", f"http://127.0.0.1:{port}")
    result, seconds = invoke("backfill", *WINDOW)
    assert result.exit_code == 1
    line = one_line(result)
    assert "connection refused 3 times" in line and "VOI_API_BASE_URL" in line
    assert f"detail in {tmp_path / 'fleetlake.log'}" in line
    assert "ProviderUnreachable" in (tmp_path / "fleetlake.log").read_text()  # the traceback
    assert seconds < 10  # two short back-offs, not 244 s


def test_unknown_zones_are_refused_before_any_hour_is_fetched(served: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOI_API_BASE_URL", served)
    result, seconds = invoke("backfill", *WINDOW, "--zones", "1,999")
    assert result.exit_code == 1
    line = one_line(result)
    assert "zone(s) 999 not among the zones the provider lists for these credentials: 1, 145" in line
    assert seconds < 10


def test_build_without_a_lake_exits_non_zero(tmp_path: Path) -> None:
    result, _ = invoke("build")
    assert result.exit_code == 1
    assert f"no lake at {tmp_path / 'lake'} (FLEETLAKE_LAKE_DIR)" in one_line(result)
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_an_unexpected_error_is_one_line_with_the_traceback_in_the_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def boom(*args: object) -> None:
        raise RuntimeError(f"provider said: Authorization: Bearer tok-9f8e7d6c5b4a, secret {CREDENTIALS.auth_token}")

    monkeypatch.setattr("pipelines.ingest.reparse", boom)
    monkeypatch.setattr(
        sys, "argv", ["fleetlake", "reparse", "--dataset", "mds_trips", "--zone", "1", "--hour", "2026-03-28T10"]
    )
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    said = "provider said: Authorization: Bearer ***, secret ***"
    assert lines == [f"error: RuntimeError: {said} (detail in {tmp_path / 'fleetlake.log'})"]
    log = (tmp_path / "fleetlake.log").read_text()
    assert "Traceback (most recent call last)" in log and "fleetlake reparse --dataset mds_trips" in log
    assert "tok-9f8e7d6c5b4a" not in log and CREDENTIALS.auth_token not in log
