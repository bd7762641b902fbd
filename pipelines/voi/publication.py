"""When the provider publishes an hour of MDS trips and events, as the pipeline expects it.

Voi compiles an hour's trips and events after the hour ends and answers 202 until then; the client retries such an
hour (FLEETLAKE_NOT_READY_RETRY_SECONDS), and the warehouse calls an event late when it was published after the hour
had been served, because an ingest of the hour as soon as it was served could not have had it: only a re-ingest
brings it in (data_quality_hourly.late_events). The embedded provider's default `--ready-delay` is this delay.
"""

from datetime import timedelta

READY_DELAY = timedelta(minutes=10)
"""How long after an hour ends the provider serves it."""
