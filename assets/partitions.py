"""Partitions: UTC hours for MDS trips and events; zones are looped inside each run (see README)."""

import dagster as dg

HOURLY_START = "2024-01-01-00:00"

hourly = dg.HourlyPartitionsDefinition(start_date=HOURLY_START, timezone="UTC")
