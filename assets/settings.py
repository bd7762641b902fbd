"""The code location's settings, read once when it loads (pipelines/config.py): the partitions' first day, the
snapshot schedule and the resources are defined from them. A bad value stops the load with an error naming its
variable, what it takes and what it got (the UI shows it as the code location's load error)."""

import dagster as dg

from pipelines.config import Settings

SETTINGS = Settings.from_env()


def schedule_status(settings: Settings) -> dg.DefaultScheduleStatus:
    """How every schedule starts: stopped, unless FLEETLAKE_SCHEDULES_RUNNING switches them all on, so that the
    daemon runs them from its start."""
    return dg.DefaultScheduleStatus.RUNNING if settings.schedules_running else dg.DefaultScheduleStatus.STOPPED


SCHEDULE_STATUS = schedule_status(SETTINGS)
