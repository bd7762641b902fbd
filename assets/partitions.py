"""Partitions: UTC hours for MDS trips and events, calendar months for city reports; zones are looped inside each
run (see README)."""

import dagster as dg

HOURLY_START = "2024-01-01-00:00"
MONTHLY_START = "2024-01-01"

hourly = dg.HourlyPartitionsDefinition(start_date=HOURLY_START, timezone="UTC")

# A month of city reports: each city's own local days of that calendar month.
monthly = dg.MonthlyPartitionsDefinition(start_date=MONTHLY_START, timezone="UTC")
