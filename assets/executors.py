"""How a fanned-out job's steps are executed, chosen by configuration: in this process, in several processes of
this machine, or on Celery workers of several machines (docs/scale-out.md).

FLEETLAKE_EXECUTOR (pipelines/config.py) picks Dagster's executor when the code location loads (the run's process
and every Celery worker load it alike):

- `multiprocess` (the default): Dagster's multiprocess executor, one process per step, at most
  FLEETLAKE_MAX_PROCESSES at once (default: the machine's cores); a run's config may lower it
  (`execution: config: max_concurrent: N`).
- `in_process`: every step in the run's own process, one after the other.
- `celery`: dagster-celery's executor; each step is a Celery task on the broker FLEETLAKE_CELERY_BROKER (results
  in FLEETLAKE_CELERY_BACKEND, default: the broker), run by whichever worker takes it. Its workers start with
  `dagster-celery worker start -A dagster_celery.app -y docs/scale-out/celery.yaml`. Steps on other
  machines need the instance's storage shared (docs/scale-out/dagster.yaml: Postgres) and the values steps
  hand each other too (`StepValues`).
"""

import os

import dagster as dg

from pipelines.config import Settings, SettingsError
from pipelines.lake.filesystem import is_remote, storage_options


def fan_out_executor(settings: Settings) -> dg.ExecutorDefinition:
    """The executor FLEETLAKE_EXECUTOR names, configured from the settings."""
    if settings.executor == "in_process":
        return dg.in_process_executor
    if settings.executor == "multiprocess":
        most = settings.max_processes or os.cpu_count() or 1
        return dg.multiprocess_executor.configured({"max_concurrent": most}, name="multiprocess")
    from dagster_celery import celery_executor

    if not settings.celery_broker:
        broker, executor = Settings.variable("celery_broker"), Settings.variable("executor")
        raise SettingsError(f"{executor}=celery needs {broker}, the Celery broker's URL (e.g. redis://host:6379/0)")
    backend = settings.celery_backend or settings.celery_broker
    return celery_executor.configured({"broker": settings.celery_broker, "backend": backend}, name="celery")


class StepValues(dg.ConfigurableIOManagerFactory):  # type: ignore[type-arg]
    """Where a fanned-out job's steps leave the values the next steps read (the zones to ingest, each zone's
    summary): small pickles under `base` (FLEETLAKE_STEP_VALUES_DIR); empty, beside a lake in object storage
    (`<lake>/_steps`, which every worker reaches) or else in the Dagster instance's storage folder."""

    base: str
    lake: str

    def create_io_manager(self, context: dg.InitResourceContext) -> dg.UPathIOManager:
        from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager

        base = self.base
        if not base and is_remote(self.lake):
            base = self.lake.rstrip("/") + "/_steps"
        if not base:
            assert context.instance is not None
            base = context.instance.storage_directory()
        options = storage_options() if is_remote(base) else {}
        return PickledObjectFilesystemIOManager(base_dir=base, **options)  # type: ignore[no-untyped-call]
