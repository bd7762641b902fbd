"""The report's charts and maps, drawn with matplotlib as SVG text to inline in the page (no tiles, no fetch).

Time axes run on UTC instants and are labelled in the city's local time, so a DST change neither folds two
hours onto one tick nor leaves a fake gap. Suppressed values are not drawn (a gap, never a zero). Maps draw the
zone's areas from their geometry, its parking spots as markers, and the already aggregated H3 cells, so their size
does not grow with trips; the busiest cells are labelled with the area they lie in.
"""

import html
import io
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
import polars as pl
import shapely
from matplotlib import colormaps
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.colors import ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path
from matplotlib.ticker import MaxNLocator

from pipelines.reports import cells as h3cells
from pipelines.reports import labels
from pipelines.reports.tables import ReportTables

PALETTE = ("#1f5f8b", "#e07b39", "#3a9d5d", "#8e5ea2", "#c44e52", "#7f7f7f", "#b8a11f", "#17becf")
VEHICLE_PALETTE = ("#e07b39", "#8e5ea2", "#17becf", "#b8a11f", "#c44e52", "#7f7f7f")
ALL, DEPLOYED, AVAILABLE = "#222222", "#1f5f8b", "#3a9d5d"
AREA_STYLES: dict[str, dict[str, object]] = {
    "operations": {"facecolor": "#eef1f4", "edgecolor": "#6b7785", "linewidth": 0.8, "zorder": 1},
    "free-floating": {"facecolor": "none", "edgecolor": "#8c96a0", "linewidth": 0.6, "linestyle": "--", "zorder": 2},
    "incentive": {"facecolor": "#5cb85c40", "edgecolor": "#3d8b3d", "linewidth": 0.5, "zorder": 3},
    "slow-zone": {"facecolor": "#f0ad4e40", "edgecolor": "#c77c0e", "linewidth": 0.5, "zorder": 3},
    "no-parking": {"facecolor": "#e9969140", "edgecolor": "#b94a48", "linewidth": 0.5, "zorder": 4},
    "no-riding": {"facecolor": "#b94a4855", "edgecolor": "#8a2b2b", "linewidth": 0.6, "zorder": 4},
    "parking-spot": {"facecolor": "#2c7fb8", "edgecolor": "#2c7fb8", "linewidth": 0.6, "zorder": 5},
}
SPOT_COLOUR = "#2c7fb8"
HOT_SPOT_LABELS = 5
OTHER_AREA: dict[str, object] = {"facecolor": "none", "edgecolor": "#999999", "linewidth": 0.5, "zorder": 2}
STYLE = {
    "svg.fonttype": "none",  # text stays text: small, selectable, readable by screen readers
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
}
SVG_ROOT = re.compile(r"<svg\b[^>]*>", re.DOTALL)
VECTOR_CELLS = 1500
"""Past this many cells a map draws them as one embedded image: thousands of vector squares weigh megabytes."""
RASTER_DPI = 200


@dataclass(frozen=True)
class Chart:
    name: str
    title: str
    caption: str
    svg: str


def _svg(figure: Figure, name: str, title: str) -> str:
    """The figure as an inline <svg> element: no XML prologue, scalable, labelled for screen readers."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None}, dpi=RASTER_DPI)
    text = buffer.getvalue()
    root = SVG_ROOT.search(text)
    if root is None:
        raise RuntimeError(f"matplotlib wrote no <svg> element for {name}")
    tag = re.sub(r'\s(width|height)="[^"]*"', "", root.group(0))
    tag = tag.replace("<svg", f'<svg class="chart" role="img" aria-label="{html.escape(title)}"', 1)
    return tag + text[root.end() :]


@contextmanager
def _style(name: str) -> Iterator[None]:
    # A salt per chart: ids of clip paths and markers stay unique when several SVGs share one page.
    settings: Any = {**STYLE, "svg.hashsalt": f"fleetlake-{name}"}
    with mpl.rc_context(settings):
        yield


def _instants(frame: pl.DataFrame) -> list[datetime]:
    """UTC instants of local hours, from hour_local and utc_offset ('+02:00')."""
    instants = []
    for local, offset in zip(frame["hour_local"], frame["utc_offset"], strict=True):
        sign = -1 if offset.startswith("-") else 1
        hours, minutes = (int(part) for part in offset[1:].split(":"))
        instants.append(local - sign * timedelta(hours=hours, minutes=minutes))
    return instants


def _series(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame[column].cast(pl.Float64).fill_null(float("nan")).to_numpy()


def _time_axis(ax: Axes, tables: ReportTables) -> None:
    period = tables.period
    ax.set_xlim(mdates.date2num([period.start_utc, period.end_utc]))  # type: ignore[no-untyped-call]
    locator = mdates.AutoDateLocator(tz=period.tz, minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=period.tz))  # type: ignore[no-untyped-call]


def _legend_above(ax: Axes, ncols: int = 4) -> None:
    """Legends above the plot, so they never hide a line or a bar."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=ncols, fontsize=8, borderaxespad=0.3)


def _no_data(ax: Axes, text: str = "No data in this period") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#6b7785")


def _vehicle_types(frame: pl.DataFrame) -> list[str]:
    return sorted(frame["vehicle_type"].unique().to_list()) if "vehicle_type" in frame.columns else []


def daily_chart(tables: ReportTables) -> Chart:
    by_type = tables.frames["daily_by_vehicle_type"]
    days = tables.period.days
    types = _vehicle_types(by_type)
    with _style("daily"):
        figure = Figure(figsize=(8, 5.2), layout="constrained")
        trips_ax, fleet_ax = figure.subplots(2, 1, sharex=True)
        positions = np.arange(len(days))
        width = 0.8 / max(len(types), 1)
        for index, vehicle_type in enumerate(types):
            rows = by_type.filter(pl.col("vehicle_type") == vehicle_type)
            values = dict(zip(rows["local_date"], _series(rows, "trips"), strict=True))
            deployed = dict(zip(rows["local_date"], _series(rows, "deployed_fleet_avg"), strict=True))
            color = VEHICLE_PALETTE[index % len(VEHICLE_PALETTE)]
            label = labels.vehicle_type(vehicle_type)
            trips_ax.bar(
                positions - 0.4 + width * (index + 0.5),
                [values.get(day, np.nan) for day in days],
                width=width,
                color=color,
                label=label,
            )
            fleet_ax.plot(
                positions, [deployed.get(day, np.nan) for day in days], marker="o", ms=3, color=color, label=label
            )
        daily = tables.frames["daily"]
        deployed_total = dict(zip(daily["local_date"], _series(daily, "deployed_fleet_avg"), strict=True))
        fleet_ax.plot(
            positions, [deployed_total.get(day, np.nan) for day in days], color=ALL, lw=1.6, label="All vehicles"
        )
        trips_ax.set_ylabel("trips started")
        fleet_ax.set_ylabel("deployed fleet (avg)")
        if not types:
            _no_data(trips_ax)
        _legend_above(trips_ax)
        _legend_above(fleet_ax)
        _day_axis(fleet_ax, days)
        title = "Trips and deployed fleet per day, by vehicle type"
        caption = (
            f"Bars: trips started per local day (a bar below {tables.k} is not drawn). Lines: average deployed fleet."
        )
        return Chart("daily", title, caption, _svg(figure, "daily", title))


def _day_axis(ax: Axes, days: list[date]) -> None:
    """One bar slot per local day; weekday names while they fit, then every few days."""
    short = len(days) <= 10
    step = 1 if short else math.ceil(len(days) / 12)
    ax.set_xticks(
        np.arange(len(days))[::step], [f"{day:%a %-d %b}" if short else f"{day:%-d %b}" for day in days[::step]]
    )
    ax.set_xlim(-0.6, len(days) - 0.4)


def hourly_chart(tables: ReportTables) -> Chart:
    hourly = tables.frames["hourly"]
    by_type = tables.frames["hourly_by_vehicle_type"]
    with _style("hourly"):
        figure = Figure(figsize=(8, 5.6), layout="constrained")
        trips_ax, fleet_ax = figure.subplots(2, 1, sharex=True)
        if hourly.is_empty():
            _no_data(trips_ax)
            _no_data(fleet_ax)
        else:
            instants = [i.replace(tzinfo=None) for i in _instants(hourly)]
            trips_ax.plot(
                instants, _series(hourly, "trips"), color=ALL, lw=1.4, marker=".", ms=2.5, label="All vehicles"
            )
            fleet_ax.fill_between(
                instants,
                _series(hourly, "deployed_fleet_min"),
                _series(hourly, "deployed_fleet_max"),
                color=DEPLOYED,
                alpha=0.15,
                lw=0,
                label="Deployed fleet, fewest to most",
            )
            fleet_ax.plot(instants, _series(hourly, "deployed_fleet_avg"), color=DEPLOYED, lw=1.4, label="Deployed")
            fleet_ax.plot(instants, _series(hourly, "available_avg"), color=AVAILABLE, lw=1.2, label="Available")
        for index, vehicle_type in enumerate(_vehicle_types(by_type)):
            rows = by_type.filter(pl.col("vehicle_type") == vehicle_type)
            instants = [i.replace(tzinfo=None) for i in _instants(rows)]
            color = VEHICLE_PALETTE[index % len(VEHICLE_PALETTE)]
            label = labels.vehicle_type(vehicle_type)
            trips_ax.plot(instants, _series(rows, "trips"), color=color, lw=0.9, marker=".", ms=2.5, label=label)
            fleet_ax.plot(
                instants, _series(rows, "deployed_fleet_avg"), color=color, lw=0.8, ls="--", label=f"{label}, deployed"
            )
        trips_ax.set_ylabel("trips started per hour")
        fleet_ax.set_ylabel("vehicles (hourly avg)")
        _legend_above(trips_ax)
        _legend_above(fleet_ax)
        _time_axis(fleet_ax, tables)
        fleet_ax.set_xlabel(f"local time ({tables.period.timezone})")
        title = "Trips, deployed fleet and available vehicles per hour"
        caption = (
            "Hourly values in the city's local time. Gaps are hours without data or with fewer than "
            f"{tables.k} trips (suppressed). Dashed: deployed fleet by vehicle type."
        )
        return Chart("hourly", title, caption, _svg(figure, "hourly", title))


def violations_chart(tables: ReportTables) -> Chart:
    daily = tables.frames["violations_daily"]
    days = tables.period.days
    rules = (
        daily.group_by("rule")
        .agg(pl.col("violation_count").sum())
        .filter(pl.col("violation_count") > 0)
        .sort("violation_count", descending=True)["rule"]
        .to_list()
    )
    with _style("violations"):
        figure = Figure(figsize=(8, 3.8), layout="constrained")
        ax = figure.subplots()
        positions = np.arange(len(days))
        bottom = np.zeros(len(days))
        for index, rule in enumerate(rules):
            rows = daily.filter(pl.col("rule") == rule)
            counts = dict(zip(rows["local_date"], _series(rows, "violation_count"), strict=True))
            values = np.array([counts.get(day, np.nan) for day in days])
            ax.bar(
                positions,
                np.nan_to_num(values),
                bottom=bottom,
                color=PALETTE[index % len(PALETTE)],
                width=0.7,
                label=labels.rule(rule),
            )
            bottom += np.nan_to_num(values)
        if not rules:
            _no_data(ax, "No violations in this period")
        _day_axis(ax, days)
        ax.set_ylabel("violations")
        if rules:
            _legend_above(ax, ncols=2)
        title = "Violations per day and rule"
        caption = (
            f"Stacked per local day; a rule with fewer than {tables.k} violations on a day is left out of its bar."
        )
        return Chart("violations", title, caption, _svg(figure, "violations", title))


def _area_patches(areas: pl.DataFrame) -> Iterator[tuple[str, PathPatch]]:
    for area_type, blob in zip(areas["area_type"], areas["geometry"], strict=True):
        geometry = shapely.from_wkb(blob)
        for polygon in getattr(geometry, "geoms", [geometry]):
            if not isinstance(polygon, shapely.Polygon) or polygon.is_empty:
                continue
            rings = [polygon.exterior, *polygon.interiors]
            path = Path.make_compound_path(*(Path(np.asarray(ring.coords)[:, :2], closed=True) for ring in rings))
            yield area_type, PathPatch(path, **AREA_STYLES.get(area_type, OTHER_AREA))


def _draw_areas(ax: Axes, tables: ReportTables) -> list[Artist]:
    """The context layers: the zone's areas as outlines and washes, its parking spots as markers (a spot is a few
    metres wide: as a polygon it would vanish at a city's scale)."""
    seen: dict[str, None] = {}
    areas = tables.city.areas
    for area_type, patch in _area_patches(areas.filter(pl.col("area_type") != "parking-spot")):
        ax.add_patch(patch)
        seen[area_type] = None
    handles: list[Artist] = [
        Patch(**AREA_STYLES.get(t, OTHER_AREA), label=labels.area_type(t))  # type: ignore[arg-type]
        for t in sorted(seen, key=lambda t: list(AREA_STYLES).index(t) if t in AREA_STYLES else 99)
    ]
    spots = areas.filter(pl.col("area_type") == "parking-spot")
    if not spots.is_empty():
        centres = shapely.centroid(shapely.from_wkb(spots["geometry"].to_numpy()))
        (markers,) = ax.plot(
            shapely.get_x(centres),
            shapely.get_y(centres),
            linestyle="none",
            marker="s",
            ms=3.2,
            mfc=SPOT_COLOUR,
            mec="white",
            mew=0.5,
            zorder=9,
            label=labels.area_type("parking-spot"),
        )
        handles.append(markers)
    return handles


def _label_hot_spots(ax: Axes, cells: pl.DataFrame, count: str) -> None:
    """The busiest cells named by the area they lie in (one label per area, the busiest of its cells)."""
    named = cells.filter(pl.col("area_type") != "outside").unique("area_name", keep="first", maintain_order=True)
    for rank, row in enumerate(named.head(HOT_SPOT_LABELS).iter_rows(named=True), start=1):
        ax.annotate(
            f"{rank} {row['area_name']} ({row[count]:,})",
            (row["cell_lng"], row["cell_lat"]),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=7.5,
            color="#1d2731",
            zorder=11,
            # A box behind the label, not a stroke around it: a path effect would turn the text into outlines.
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
            arrowprops={"arrowstyle": "-", "color": "#1d2731", "lw": 0.6},
        )


def _scale_bar(ax: Axes, latitude: float) -> None:
    """A 1 km bar in the lower left corner (degrees of longitude per km shrink with latitude)."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    km = 1 / (111.32 * max(math.cos(math.radians(latitude)), 0.01))
    if km > (x1 - x0) / 2:  # a map of a few cells (no zone areas to frame it): the bar would overflow it
        return
    x, y = x0 + (x1 - x0) * 0.04, y0 + (y1 - y0) * 0.04
    ax.plot([x, x + km], [y, y], color="#222222", lw=2, zorder=10)
    ax.text(x + km / 2, y + (y1 - y0) * 0.012, "1 km", ha="center", va="bottom", fontsize=8, zorder=10)


def _map(tables: ReportTables, cells: pl.DataFrame, count: str, cmap: str, legend: str) -> Figure:
    figure = Figure(figsize=(7.5, 7), layout="constrained")
    ax = figure.subplots()
    handles = _draw_areas(ax, tables)
    if not cells.is_empty():
        squares = [h3cells.boundary(cell) for cell in cells["h3_cell"]]
        values = cells[count].to_numpy()
        highest = max(float(values.max()), tables.k + 1)
        # A few very busy cells would wash out all others on a linear scale.
        logarithmic = highest >= 20 * tables.k
        norm = LogNorm(tables.k, highest) if logarithmic else Normalize(tables.k, highest)
        collection = PolyCollection(
            squares, array=values, cmap=_deep(cmap), norm=norm, edgecolors="#00000055", linewidths=0.3, zorder=8
        )
        collection.set_rasterized(len(squares) > VECTOR_CELLS)
        ax.add_collection(collection)
        colorbar = figure.colorbar(collection, ax=ax, shrink=0.6, label=legend)
        if not logarithmic:
            colorbar.locator = MaxNLocator(integer=True)
            colorbar.update_ticks()
        _label_hot_spots(ax, cells, count)
    bounds = _extent(tables, cells)
    if bounds is not None:
        margin_x, margin_y = (bounds[2] - bounds[0]) * 0.03, (bounds[3] - bounds[1]) * 0.03
        ax.set_xlim(bounds[0] - margin_x, bounds[2] + margin_x)
        ax.set_ylim(bounds[1] - margin_y, bounds[3] + margin_y)
    latitude = tables.city.reference_latitude()
    ax.set_aspect(1 / max(math.cos(math.radians(latitude)), 0.01))
    ax.grid(False)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if cells.is_empty():
        _no_data(ax, f"No cell reached {tables.k}")
    if bounds is not None:
        _scale_bar(ax, latitude)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, -0.01), ncols=4, fontsize=8)
    return figure


def _deep(name: str) -> ListedColormap:
    """A sequential colormap without its palest third: every drawn cell stands out from the areas below."""
    return ListedColormap(colormaps[name](np.linspace(0.35, 1.0, 256)))


def _extent(tables: ReportTables, cells: pl.DataFrame) -> tuple[float, float, float, float] | None:
    """What the map shows: the zone's areas and every cell drawn, outside the areas too."""
    boxes = []
    if (bounds := tables.city.bounds()) is not None:
        boxes.append(bounds)
    if not cells.is_empty():
        outlines = np.array([point for cell in cells["h3_cell"] for point in h3cells.boundary(cell)])
        boxes.append(
            (
                float(outlines[:, 0].min()),
                float(outlines[:, 1].min()),
                float(outlines[:, 0].max()),
                float(outlines[:, 1].max()),
            )
        )
    if not boxes:
        return None
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def _cell_words(tables: ReportTables) -> str:
    edge = h3cells.edge_length_m(tables.resolution)
    return f"hexagonal H3 cell (resolution {tables.resolution}, edges of about {edge:.0f} m)"


def violations_map(tables: ReportTables) -> Chart:
    cells = tables.frames["violation_cells"]
    left_out = tables.cells_left_out.get("violation_cells", 0)
    title = "Where violations happened"
    with _style("violations_map"):
        figure = _map(tables, cells, "violation_count", "YlOrRd", "violations per cell")
        caption = (
            f"Violations per {_cell_words(tables)} over the zone's areas and parking spots; the busiest are "
            f"named by the area they lie in. {left_out} cells with fewer than {tables.k} violations are not shown."
        )
        return Chart("violations_map", title, caption, _svg(figure, "violations_map", title))


def hotspots_map(tables: ReportTables) -> Chart:
    cells = tables.frames["parking_hotspots"]
    left_out = tables.cells_left_out.get("parking_hotspots", 0)
    title = "Parking hot spots: where trips ended"
    with _style("hotspots_map"):
        figure = _map(tables, cells, "trips_ended", "Purples", "trips ended per cell")
        caption = (
            f"Trips ended per {_cell_words(tables)}, where the vehicles were left, over the zone's areas and "
            f"parking spots; the busiest are named by the area they lie in. {left_out} cells with fewer than "
            f"{tables.k} trip ends are not shown."
        )
        return Chart("hotspots_map", title, caption, _svg(figure, "hotspots_map", title))


CHARTS: tuple[Callable[[ReportTables], Chart], ...] = (
    daily_chart,
    hourly_chart,
    violations_chart,
    violations_map,
    hotspots_map,
)


def draw_charts(tables: ReportTables) -> dict[str, Chart]:
    drawn = [chart(tables) for chart in CHARTS]
    return {chart.name: chart for chart in drawn}
