"""Partitions: UTC hours for MDS trips and events, calendar months for city reports; zones are looped inside each
run (see README). Both start where the city's history does (FLEETLAKE_HISTORY_START), so an archive older than
the default loads, and the UI lists no missing partitions before the first day a city has."""

from datetime import UTC, date, datetime, time

import dagster as dg

from assets.partition_keys import HOURLY_KEY_FORMAT, hourly_key
from assets.settings import SETTINGS


def hourly_partitions(history_start: date) -> dg.HourlyPartitionsDefinition:
    first_hour = datetime.combine(history_start, time(0), UTC)
    return dg.HourlyPartitionsDefinition(start_date=hourly_key(first_hour), fmt=HOURLY_KEY_FORMAT, timezone="UTC")


def monthly_partitions(history_start: date) -> dg.MonthlyPartitionsDefinition:
    """A month of city reports: each city's own local days of that calendar month, from the history's month."""
    return dg.MonthlyPartitionsDefinition(start_date=f"{history_start.replace(day=1):%Y-%m-%d}", timezone="UTC")


hourly = hourly_partitions(SETTINGS.history_start)
monthly = monthly_partitions(SETTINGS.history_start)
