"""The command line's log: the detail behind a one-line error (a traceback, every failed partition of a run),
appended to FLEETLAKE_LOG_FILE (default data/fleetlake.log), scrubbed of credentials like every error text."""

import sys
from datetime import UTC, datetime
from pathlib import Path

from pipelines.scrub import scrub


def log_file() -> Path:
    """FLEETLAKE_LOG_FILE; its default when the settings themselves cannot be read (the line saying so is
    printed without detail, and any other error still has a log to go to). The settings are imported here, when
    a log is written, not when the command line starts (pydantic is not needed to print `--help`)."""
    from pipelines.config import Settings, SettingsError

    try:
        return Settings.from_env().log_file
    except SettingsError:
        return Settings().log_file


def log_detail(text: str) -> Path | None:
    """Append `text` under a line naming the time and the command; returns the log's path, or None when it
    cannot be written (a full disk must not hide the one-line error itself)."""
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} fleetlake {' '.join(sys.argv[1:])}\n")
            log.write(scrub(text).rstrip() + "\n")
    except OSError:
        return None
    return path
