"""The same backfill fanned out per zone on 1, 2 and 4 worker processes of this machine (docs/scale-out.md).

Everything runs on loopback, as the scale-out test does: the embedded provider (four zones, its real rate limit),
Postgres for Dagster's runs and events, moto's S3 server for the lake, Redis as the Celery broker. Each round
gets a fresh lake prefix and warehouse, starts N Celery workers (concurrency 1 each) and launches
`zone_backfill_job` with `dagster job execute`; with `--executor multiprocess` the run's own process fans out
instead (FLEETLAKE_MAX_PROCESSES=N, a local lake). It prints, per round, the wall time of the run, the span of
the zone steps, the build step, the requests made, and `uptime` (the machine is shared: the load says how much
of it the round had).

    .venv/bin/python benchmarks/scale_out_benchmark.py [--executor celery|multiprocess] [--workers 1,2,4]
"""

import argparse
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import s3fs

from fleetlake_provider.app import Credentials, ProviderApp
from fleetlake_provider.clock import FixedClock
from fleetlake_provider.server import running
from fleetlake_provider.service import ProviderOptions, SimulatedProvider
from tests.loopback_servers import postgres, redis, s3_server
from tests.scale_out_deployment import S3_KEY, S3_SECRET, celery_workers, deployment_env, run_zone_backfill

ZONES = ("1", "9", "31", "145")
START = datetime(2026, 3, 28, tzinfo=UTC)
BUCKET = "fleetlake-benchmark"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def step_spans(env: dict[str, str]) -> tuple[float, float]:
    """(seconds from the first zone step's start to the last one's end, seconds of the build step) of the
    newest run, from the instance's event log."""
    import dagster as dg

    previous = {name: os.environ.get(name) for name in ("DAGSTER_HOME", "FLEETLAKE_DAGSTER_POSTGRES_URL")}
    os.environ.update({name: env[name] for name in previous})
    try:
        with dg.DagsterInstance.get() as instance:
            run = instance.get_runs(limit=1)[0]
            events = instance.all_logs(run.run_id)
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    times: dict[str, list[float]] = {}
    for event in events:
        if (
            event.dagster_event is not None
            and event.step_key
            and (event.dagster_event.is_step_start or event.dagster_event.is_step_success)
        ):
            times.setdefault(event.step_key, []).append(event.timestamp)
    zones = [t for key, t in times.items() if key.startswith("ingest_zone")]
    build = times.get("build_zone_window", [0.0, 0.0])
    return max(max(t) for t in zones) - min(min(t) for t in zones), max(build) - min(build)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executor", choices=("celery", "multiprocess"), default="celery")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--hours", type=int, default=12)
    parser.add_argument("--vehicles", type=int, default=300)
    args = parser.parse_args()
    window = (START + timedelta(hours=6), START + timedelta(hours=6 + args.hours))
    city = SimulatedProvider(
        ProviderOptions(zones=ZONES, start=START, days=1, vehicles=args.vehicles, seed=11),
        FixedClock(START + timedelta(days=1, minutes=15)),
    )
    app = ProviderApp(city, Credentials())  # the provider's own rate limit, 4,000 requests a minute
    print(f"{len(ZONES)} zones x {args.hours} h, {args.vehicles} vehicles a zone, executor {args.executor}")
    with (
        tempfile.TemporaryDirectory(prefix="fleetlake-scale-out-") as scratch,
        running(app) as url,
        postgres() as pg_url,
        s3_server(Path(scratch) / "s3") as s3_url,
        redis(Path(scratch) / "redis") as broker,
    ):
        s3fs.S3FileSystem(endpoint_url=s3_url, key=S3_KEY, secret=S3_SECRET).mkdir(BUCKET)
        for count in (int(n) for n in args.workers.split(",")):
            folder = Path(scratch) / f"{args.executor}-{count}"
            env = deployment_env(
                home=folder / "home",
                postgres_url=pg_url,
                broker=broker,
                s3_endpoint=s3_url,
                lake=f"s3://{BUCKET}/{args.executor}-{count}" if args.executor == "celery" else str(folder / "lake"),
                warehouse=folder / "warehouse.duckdb",
                provider_url=url,
                zones=ZONES,
                executor=args.executor,
            )
            env["FLEETLAKE_MAX_PROCESSES"] = str(count)
            before = uptime()
            began = time.perf_counter()
            if args.executor == "celery":
                names = tuple(f"w{n}" for n in range(count))
                with celery_workers(env, names, folder / "workers"):
                    began = time.perf_counter()
                    run = run_zone_backfill(env, *window, 0, folder)
            else:
                run = run_zone_backfill(env, *window, 0, folder)
            seconds = time.perf_counter() - began
            if run.returncode != 0:
                raise SystemExit(f"the run failed: {run.stdout[-3000:]}{run.stderr[-3000:]}")
            zones_s, build_s = step_spans(env)
            print(
                f"{count} worker process(es): run {seconds:.1f} s, zone steps {zones_s:.1f} s, "
                f"build {build_s:.1f} s\n"
                f"  uptime before: {before}\n  uptime after:  {uptime()}",
                flush=True,
            )


if __name__ == "__main__":
    main()
