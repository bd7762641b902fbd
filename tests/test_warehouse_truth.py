"""The warehouse against the provider's ground truth: the same city, ingested and built, must agree with it."""

import polars as pl

from fleetlake_provider.truth import truth_frames
from pipelines.warehouse.connection import connect
from tests.conftest import BuiltWarehouse


def query(built: BuiltWarehouse, sql: str) -> pl.DataFrame:
    """A read-only query, as analysts run them; UTC timestamps come back as polars UTC datetimes in ms."""
    with connect(built.warehouse.path) as con:
        frame = pl.DataFrame(pl.from_arrow(con.sql(sql).to_arrow_table()))
    return frame.with_columns(
        pl.col(name).dt.convert_time_zone("UTC").cast(pl.Datetime("ms", "UTC"))
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    )


def test_trips_are_exactly_the_true_trips(built_warehouse: BuiltWarehouse) -> None:
    truth = truth_frames(built_warehouse.provider)["trips"].sort("trip_id")
    trips = query(built_warehouse, "select * from trips order by trip_id")
    assert trips["trip_id"].to_list() == truth["trip_id"].to_list()
    assert trips["device_id"].to_list() == truth["device_id"].to_list()
    assert trips["vehicle_type"].to_list() == truth["vehicle_type"].to_list()
    assert (trips["duration_s"] - truth["duration_s"].cast(pl.Float64)).abs().max() < 1.0  # type: ignore[operator]
    assert trips["zone_id"].to_list() == truth["zone_id"].to_list()


def test_state_intervals_follow_the_true_timeline(built_warehouse: BuiltWarehouse) -> None:
    truth = truth_frames(built_warehouse.provider)["vehicle_states"]
    intervals = query(built_warehouse, "select * from vehicle_state_intervals")
    assert intervals.height == truth.height
    joined = truth.join(
        intervals, left_on=["device_id", "start_time"], right_on=["device_id", "started_at"], how="inner"
    )
    assert joined.height == truth.height
    assert (joined["vehicle_state"] == joined["vehicle_state_right"]).all()
