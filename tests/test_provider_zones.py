"""The embedded provider at scale: any number of zones (generated beyond the built-in cities), each with its own
fleet size, from the Python options and from `fleetlake provider` alike."""

from zoneinfo import ZoneInfo

import pytest
import shapely
import typer
from typer.testing import CliRunner

from fleetlake_provider import gbfs, zone_api
from fleetlake_provider.city import CATALOG, generated_spec, spec_of, zone_ids
from fleetlake_provider.cli import _fleet, _zones, app
from tests.conftest import make_provider


def test_a_count_of_zones_takes_the_built_in_cities_first_then_generated_ones() -> None:
    assert zone_ids(2) == ("1", "145")
    assert zone_ids(6) == ("1", "145", "9", "31", "1001", "1002")
    assert len(set(zone_ids(40))) == 40


def test_generated_zones_are_deterministic_real_looking_cities() -> None:
    specs = [spec_of(zone) for zone in zone_ids(30)[4:]]
    assert specs == [generated_spec(spec.zone_id) for spec in specs]  # the same id, the same city
    assert len({(spec.name, spec.lat, spec.lng) for spec in specs}) == len(specs)  # no two alike, past the list too
    for spec in specs:
        ZoneInfo(spec.timezone)  # a real time zone
        assert 3000 <= spec.radius_m <= 4500
        assert (spec.parking_mode == "parking-spot") == spec.licence_verification_required
    assert {spec.parking_mode for spec in specs} == {"free-floating", "parking-spot"}
    for unknown in ("1000", "01001", "abc", "2"):
        with pytest.raises(ValueError, match="unknown zone"):
            spec_of(unknown)


def test_each_zone_gets_its_own_fleet_size_and_its_city_is_served() -> None:
    provider = make_provider(zones=("1", "1001", "1002"), vehicles=6, fleet={"1001": 15}, days=1)
    sizes = {zone: z.fleet.vehicles.height for zone, z in provider.zones.items()}
    assert sizes == {"1": 6, "1001": 15, "1002": 6}
    listed = {z["zoneId"]: z["zoneName"] for z in zone_api.info(provider)["data"]["attributes"]["zones"]}
    assert listed == {"1": "Stockholm", "1001": "Gothenburg", "1002": "Hamburg"}
    info = gbfs.feed(provider, "1002", "system_information", "http://x")["data"]
    assert info["timezone"] == "Europe/Berlin"
    hamburg = provider.zones["1002"].city
    operations = hamburg.operations.geometry
    assert operations.is_valid and shapely.contains_xy(operations, hamburg.spec.lng, hamburg.spec.lat)
    with pytest.raises(ValueError, match="not served"):
        make_provider(zones=("1",), fleet={"145": 10}, days=1)


def test_the_command_line_reads_a_count_ids_and_fleet_sizes() -> None:
    assert _zones("3") == ("1", "145", "9")
    assert _zones("9,") == ("9",)  # one zone by its id
    assert _zones("1, 1001,1") == ("1", "1001")
    assert _fleet("1:20000, 1001:3000", ("1", "1001")) == {"1": 20000, "1001": 3000}
    for bad in ("0", "1,77"):
        with pytest.raises(typer.BadParameter):
            _zones(bad)
    for bad_fleet in ("1:0", "1", "1:x", "145:10"):
        with pytest.raises(typer.BadParameter):
            _fleet(bad_fleet, ("1",))
    result = CliRunner().invoke(app, ["truth", "--out", "/nonexistent/x", "--zones", "2", "--fleet", "9:5"])
    assert result.exit_code == 2 and "--fleet sizes zone(s) ['9']" in result.output
    assert sorted(CATALOG) == sorted(zone_ids(4))
