"""The places the Metrics API's `geography_id` names, as MDS Geography objects: each zone and each zone area.

A zone and its areas have ids of the zone API's own ("101", "downtown"); MDS names a geography by UUID, so each gets
a UUID derived from its ids (version 5 in a namespace of the project's: the same id in every build and on every
machine). A zone's shape is the union of its latest areas' shapes, an area's its latest shape; the geography_type of a
zone is `zone`, of an area its zone API type. The areas of a zone never overlap in what they count (a place belongs to
its most specific area, pipelines/warehouse/areas.py), so the areas of one type add up without counting twice.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import shapely

NAMESPACE = uuid.UUID("6f2c7c1e-3f0e-5b8e-9a57-5b1d0e4c2a10")
ZONE_TYPE = "zone"


def zone_geography_id(zone_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"zone:{zone_id}"))


def area_geography_id(zone_id: str, area_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"area:{zone_id}:{area_id}"))


@dataclass(frozen=True)
class Geography:
    geography_id: str
    zone_id: str
    scope: str  # 'zone' or 'area', as the metrics models' rows
    area_id: str | None
    geography_type: str
    name: str
    published: datetime | None
    shape: shapely.Geometry | None

    def as_mds(self) -> dict[str, Any]:
        """The MDS Geography object (geography.yaml)."""
        features = []
        if self.shape is not None and not self.shape.is_empty:
            features.append(
                {
                    "type": "Feature",
                    "properties": {"zone_id": self.zone_id, "area_id": self.area_id},
                    "geometry": json.loads(shapely.to_geojson(self.shape)),
                }
            )
        published_ms = int(self.published.timestamp() * 1000) if self.published is not None else 0
        return {
            "name": self.name,
            "geography_id": self.geography_id,
            "geography_type": self.geography_type,
            "geography_json": {"type": "FeatureCollection", "features": features},
            "published_date": max(published_ms, 1514764800000),
        }


ZONES = """
select zone_id, first_hour from core.int_zone_horizons order by zone_id
"""
AREAS = """
select zone_id, area_id, area_type, area_name, geometry, valid_from,
from staging.stg_zone__areas
qualify row_number() over (partition by zone_id, area_id order by valid_from desc) = 1
order by zone_id, area_id
"""


def geographies(con: duckdb.DuckDBPyConnection) -> list[Geography]:
    """Every zone with delivered MDS data and every area the zone API ever gave it."""
    areas = con.sql(AREAS).fetchall()
    shapes: dict[str, list[shapely.Geometry]] = {}
    found: list[Geography] = []
    for zone_id, area_id, area_type, area_name, geometry, valid_from in areas:
        shape = shapely.from_wkb(geometry) if geometry is not None else None
        if shape is not None:
            shapes.setdefault(zone_id, []).append(shape)
        found.append(
            Geography(
                area_geography_id(zone_id, area_id),
                zone_id,
                "area",
                area_id,
                area_type,
                area_name or f"{area_type} {area_id}",
                valid_from,
                shape,
            )
        )
    zones = [
        Geography(
            zone_geography_id(zone_id),
            zone_id,
            "zone",
            None,
            ZONE_TYPE,
            f"Zone {zone_id}",
            first_hour,
            shapely.union_all(shapes[zone_id]) if zone_id in shapes else None,
        )
        for zone_id, first_hour in con.sql(ZONES).fetchall()
    ]
    return zones + found
