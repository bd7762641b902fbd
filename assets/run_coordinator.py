"""The instance's run queue: Dagster's queued run coordinator, which also marks every run that ingests MDS data.

The one-ingestion-at-a-time limit (dagster.yaml) reads the tag `fleetlake/ingest` of runs. Runs of
`mds_hourly_job` carry it (the job's tags), but a run of the same asset launched another way does not: a
materialization or an asset backfill started from the asset graph runs Dagster's implicit asset job, whose tags
are only those of the launch. Every run submitted to the queue passes through `submit_run`, so a run whose plan
executes the ingestion step gets the tag there, with a maximum runtime for the hours it covers, before it is
queued. (The command line does not queue its runs: it executes them itself, tagged by assets/launch.py.)

Loaded by the webserver and the daemon from dagster.yaml: this module imports nothing heavier than Dagster and the
settings model (pipelines/config.py), whose FLEETLAKE_MAX_RUNTIME_SECONDS it reads when a run is queued.
"""

import dagster as dg

from assets.run_limits import INGEST_TAG, MAX_RUNTIME_TAG, ingest_run_tags, partition_hours
from pipelines.config import Settings

INGEST_STEP = "mds_hourly"  # the op of the mds_trips / mds_events multi-asset (assets/ingestion.py)


class IngestTaggingRunCoordinator(dg.QueuedRunCoordinator):
    """A QueuedRunCoordinator (same configuration) that tags ingesting runs on submission."""

    def submit_run(self, context: dg.SubmitRunContext) -> dg.DagsterRun:
        run = context.dagster_run
        missing = self.missing_ingest_tags(run)
        if missing:
            self._instance.add_run_tags(run.run_id, missing)
            tagged = self._instance.get_run_by_id(run.run_id)
            assert tagged is not None
            context = dg.SubmitRunContext(tagged, context.workspace)
        return super().submit_run(context)

    def missing_ingest_tags(self, run: dg.DagsterRun) -> dict[str, str]:
        """The ingestion tags a run lacks; none if it does not execute the ingestion step."""
        if INGEST_TAG in run.tags or not self.executes_ingestion(run):
            return {}
        # Read when the run is queued, in the webserver's or the daemon's process (the coordinator outlives loads).
        tags = ingest_run_tags(partition_hours(run.tags), Settings.from_env().max_runtime_s)
        if MAX_RUNTIME_TAG in run.tags:  # the launch chose its own
            del tags[MAX_RUNTIME_TAG]
        return tags

    def executes_ingestion(self, run: dg.DagsterRun) -> bool:
        if run.execution_plan_snapshot_id is None:
            return False
        plan = self._instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        keys = plan.step_keys_to_execute or [step.key for step in plan.steps]
        return INGEST_STEP in keys
