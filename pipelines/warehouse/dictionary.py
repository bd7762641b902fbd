"""The data dictionary (`docs/data_dictionary.md`), generated from the built warehouse and the model files.

Each mart's section comes from three places, so the dictionary cannot drift from what analysts query:

- the model header in `sql/marts/<mart>.sql`: its first comment line (what the mart is), grain, inputs and
  materialization (see `pipelines/warehouse/models.py`);
- the built warehouse, opened read-only: every table and view of the `main` schema, with its columns and DuckDB
  types from `information_schema.columns`;
- column descriptions written beside the column, as a trailing comment on the line of the model's `final` select
  that names it (`epoch(ended_at) - epoch(started_at) as duration_s,  -- seconds in the state`). Columns that mean
  the same in every mart (`zone_id`, `device_id`, ...) are described once, in `COMMON_COLUMNS`; a trailing comment
  in a model overrides it.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.lake.mds_versions import GAPS
from pipelines.lake.plausibility import DECISIONS
from pipelines.warehouse.models import HEADER, SQL_DIR, Model, discover
from pipelines.warehouse.sqltext import quoted, sql_text

MART_SCHEMA = "main"
COMMON_COLUMNS = {
    "zone_id": "The Voi zone (one city or operating area) the row belongs to.",
    "device_id": "The vehicle: its MDS `device_id` (DuckDB type UUID).",
    "trip_id": "The trip: its MDS `trip_id` (DuckDB type UUID).",
    "event_id": "The MDS event: its `event_id` (DuckDB type UUID).",
    "vehicle_type": "The vehicle's MDS type (`scooter`, `bicycle`, ...), from the latest vehicles snapshot.",
    "timezone": (
        "The zone's IANA time zone, which every `*_local` column uses: from configuration, GBFS `system_information` "
        "or the zone's geometry (`core.int_zone_timezones.timezone_source`); null when none gives one."
    ),
}
FINAL_CTE = re.compile(r"^final\s+as\s*\((?P<body>.*?)^\)", re.MULTILINE | re.DOTALL | re.IGNORECASE)
TRAILING = re.compile(r"^\s*(?!--)(?P<expr>\S.*?)\s*--\s*(?P<text>\S.*?)\s*$")
ALIAS = re.compile(r"\bas\s+(\w+)\s*,?$", re.IGNORECASE)
LAST_NAME = re.compile(r"(\w+)\s*,?$")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str


@dataclass(frozen=True)
class Mart:
    name: str
    kind: str
    summary: str
    grain: str
    inputs: tuple[str, ...]
    materialized: str
    columns: tuple[Column, ...]


def column_comments(sql: str) -> dict[str, str]:
    """Column descriptions from the trailing comments of a model's `final` select (the whole file if none)."""
    final = FINAL_CTE.search(sql)
    out: dict[str, str] = {}
    for line in (final.group("body") if final else sql).splitlines():
        match = TRAILING.match(line)
        if match is None:
            continue
        expr = match.group("expr")
        name = ALIAS.search(expr) or LAST_NAME.search(expr)
        if name is not None:
            out[name.group(1)] = match.group("text")
    return out


def summary(sql: str) -> str:
    """What the model is: its comment lines before the first header line (grain, inputs, ...), as one sentence."""
    lines = []
    for line in sql.splitlines():
        if not line.startswith("--") or HEADER.match(line):
            break
        lines.append(line.removeprefix("--").strip())
    return " ".join(filter(None, lines))


def descriptions(model: Model, columns: Iterable[str]) -> dict[str, str]:
    """The description of each of `columns` of the model: its trailing comment in the model's `final` select, else
    the common one (`COMMON_COLUMNS`), else none. The warehouse's column comments and the dictionary read this."""
    comments = column_comments(model.sql)
    return {c: text for c in columns if (text := comments.get(c, COMMON_COLUMNS.get(c, "")))}


def write_comments(con: duckdb.DuckDBPyConnection, models: Iterable[Model]) -> int:
    """Write each model's summary as its table's (or view's) comment, and its column descriptions as the column
    comments, so that `describe`, `duckdb_columns()`, DBeaver and Dagster show what the dictionary says. Only the
    comments that differ are written (a window build recreates the views and few tables); returns how many."""
    chosen = {(m.schema, m.name): m for m in models}
    relations = {
        (schema, name): (kind, comment or "")
        for schema, name, kind, comment in con.execute(
            "select schema_name, table_name, 'table', comment from duckdb_tables() "
            "where database_name = current_database() "
            "union all select schema_name, view_name, 'view', comment from duckdb_views() "
            "where database_name = current_database() and not internal"
        ).fetchall()
    }
    stored: dict[tuple[str, str], dict[str, str]] = {}
    for schema, name, column, comment in con.execute(
        "select schema_name, table_name, column_name, comment from duckdb_columns() "
        "where database_name = current_database()"
    ).fetchall():
        stored.setdefault((schema, name), {})[column] = comment or ""
    statements: list[tuple[str, str]] = []
    for key, model in chosen.items():
        if key not in relations:
            continue
        kind, comment = relations[key]
        names = {"schema": model.schema, "name": model.name}
        if (text := summary(model.sql)) and text != comment:
            statements.append((sql_text(f"comment on {kind} {{schema}}.{{name}} is $text", **names), text))
        columns = stored.get(key, {})
        for column, text in descriptions(model, columns).items():
            if text != columns[column]:
                statement = sql_text("comment on column {schema}.{name}.{column} is $text", column=column, **names)
                statements.append((statement, text))
    if not statements:
        return 0
    # One transaction: each COMMENT ON committed alone cost 1.7 times as much (88 comments: 0.24 s -> 0.14 s CPU).
    # One call: DuckDB runs the statements of one text in turn, a fifth cheaper than a call each (396 comments:
    # 0.09 -> 0.07 s CPU). COMMENT ON takes no parameters: the texts are quoted literals.
    con.execute("begin transaction")
    try:
        con.execute(";\n".join(statement.replace("$text", quoted(text)) for statement, text in statements))
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return len(statements)


def _materialized(model: Model) -> str:
    if model.incremental_column:
        return f"incremental on `{model.incremental_column}`"
    return model.materialized


def describe(warehouse_path: Path, sql_dir: Path = SQL_DIR) -> list[Mart]:
    """Every mart of the built warehouse with its header and typed, described columns."""
    models = {name: m for name, m in discover(sql_dir).items() if m.schema == MART_SCHEMA}
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        rows = con.execute(
            """
            select tables.table_name, tables.table_type, columns.column_name, columns.data_type
            from information_schema.tables as tables
            inner join information_schema.columns as columns
                on tables.table_catalog = columns.table_catalog
                and tables.table_schema = columns.table_schema
                and tables.table_name = columns.table_name
            where tables.table_schema = $schema
            order by tables.table_name, columns.ordinal_position
            """,
            {"schema": MART_SCHEMA},
        ).fetchall()
    columns: dict[str, list[tuple[str, str]]] = {}
    kinds: dict[str, str] = {}
    for table, kind, column, data_type in rows:
        columns.setdefault(table, []).append((column, data_type))
        kinds[table] = "view" if kind == "VIEW" else "table"
    marts = []
    for name, typed in columns.items():
        model = models.get(name)
        described = descriptions(model, (column for column, _ in typed)) if model else {}
        marts.append(
            Mart(
                name=name,
                kind=kinds[name],
                summary=summary(model.sql) if model else "",
                grain=model.grain if model else "",
                inputs=model.inputs if model else (),
                materialized=_materialized(model) if model else kinds[name],
                columns=tuple(
                    Column(column, data_type, described.get(column, COMMON_COLUMNS.get(column, "")))
                    for column, data_type in typed
                ),
            )
        )
    return marts


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(marts: list[Mart]) -> str:
    lines = [
        "# Data dictionary",
        "",
        "The marts of the DuckDB warehouse (schema `main`), what analysts query. Generated by",
        "`pipelines.warehouse.dictionary.write_dictionary` from the model headers in `sql/marts/`, the column types",
        "of a built warehouse and the trailing `-- ` comments of each model's `final` select: edit those, not this.",
        "",
        *naming_convention(),
        "",
        *(f"- [`{mart.name}`](#{mart.name})" for mart in marts),
    ]
    for mart in marts:
        lines += ["", f"## {mart.name}", ""]
        if mart.summary:
            lines += [mart.summary, ""]
        lines += [
            f"- **Grain:** {mart.grain or 'not stated'}",
            f"- **Inputs:** {', '.join(f'`{i}`' for i in mart.inputs) or 'not stated'}",
            f"- **Materialized:** {mart.materialized}",
            "",
            "| Column | Type | Description |",
            "| --- | --- | --- |",
            *(f"| `{c.name}` | {_cell(c.type)} | {_cell(c.description)} |" for c in mart.columns),
        ]
    lines += bad_record_decisions()
    lines += mds_version_gaps()
    return "\n".join(lines) + "\n"


# How time and place columns are named in every model (staging, core and marts): one name for one kind of value.
NAMING = (
    ("`hour`", "TIMESTAMP WITH TIME ZONE", "Start of the UTC hour the row counts (every hourly mart's grain)."),
    ("`hour_local`", "TIMESTAMP", "That hour in the zone's local time zone (naive local timestamp)."),
    ("`local_date`", "DATE", "The zone's local calendar day (23 or 25 hours across a DST change)."),
    (
        "`<role>_hour`",
        "TIMESTAMP WITH TIME ZONE",
        "Start of a UTC hour in another role: `delivery_hour` (the lake partition that delivered a record; "
        "`partition_hour` in the core models that list the lake's files), `first_hour`, `last_missing_hour`.",
    ),
    (
        "`<event>_at`",
        "TIMESTAMP WITH TIME ZONE",
        "An instant (UTC): `started_at`, `ended_at`, `observed_at`, `captured_at`, `evidence_at`, `day_start_at`. "
        "Fields MDS names itself keep their MDS name: `start_time`, `end_time`, `event_time`, `publication_time`.",
    ),
    ("`<instant>_local`", "TIMESTAMP", "An instant in the zone's local time zone: `start_time_local`, ..."),
    ("`timezone`", "VARCHAR", "The zone's IANA time zone every `*_local` column uses (null: local times unknown)."),
    ("`zone_id`", "VARCHAR", "The Voi zone (one city or operating area)."),
    (
        "`area_id`, `area_type`, `area_name`, `area_label`",
        "VARCHAR",
        "A zone area: its id in the zone API, its type (`parking-spot`, `no-parking`, `operations`, ...), its name "
        "when it has one, and a readable label (its name, else its type and id). Every mart column holding an area "
        "id comes with its type and label; `start_`/`end_` prefix them where a row has two (`start_area_label`).",
    ),
    ("`lat`, `lng`", "DOUBLE", "WGS 84 degrees; `start_lat`, `end_lng`, ... where a row has two places."),
)


def naming_convention() -> list[str]:
    """The section on how time and place columns are named, at the top of the dictionary."""
    return [
        "## Names of time and place columns",
        "",
        "The same kind of value has the same name in every model, whatever the mart:",
        "",
        "| Name | Type | What it holds |",
        "| --- | --- | --- |",
        *(f"| {name} | {kind} | {_cell(text)} |" for name, kind, text in NAMING),
    ]


def mds_version_gaps() -> list[str]:
    """The section on what MDS 1.2 and 0.4 (and 2.0) cannot say, and what the columns hold then."""
    lines = [
        "",
        "## What each MDS version cannot say",
        "",
        "A zone may be read in MDS 2.0, 1.2 or 0.4 (`FLEETLAKE_MDS_VERSIONS`); `trips.mds_version` and the lake's "
        "`mds_version` say which. Where a version cannot say something, the column is null (not known) or says "
        "what it holds instead. Generated from `GAPS` in `pipelines/lake/mds_versions.py`; the mapping of states "
        "and event types is in `docs/mds_versions.md`.",
        "",
        "| Versions | Columns | What they hold |",
        "|---|---|---|",
    ]
    lines += [f"| {', '.join(g.versions)} | {_cell(g.columns)} | {_cell(g.holds)} |" for g in GAPS]
    return lines


def bad_record_decisions() -> list[str]:
    """The section on records that fail a check: quarantined or flagged, per kind (pipelines/lake/plausibility.py)."""
    return [
        "",
        "## Bad records: quarantine or flag",
        "",
        "Ingestion judges every record on its own. A quarantined record is kept aside in `lake.quarantine` with its",
        "reason (naming the field) and raw text, counted in `data_quality_hourly.mds_*_quarantined`, and in no",
        "other table; a flagged record is kept and carries the flag in staging, counted in `data_quality_hourly`.",
        "Generated from `DECISIONS` in `pipelines/lake/plausibility.py`.",
        "",
        "| Datasets | Kind | Outcome | Field named | Why |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {_cell(d.datasets)} | {_cell(d.kind)} | {d.outcome} | {_cell(d.field)} | {_cell(d.why)} |"
            for d in DECISIONS
        ),
    ]


def undocumented(marts: list[Mart]) -> list[str]:
    """`mart.column` for every column without a description."""
    return [f"{mart.name}.{c.name}" for mart in marts for c in mart.columns if not c.description]


def write_dictionary(warehouse_path: Path, out_path: Path) -> Path:
    """Write the data dictionary of the warehouse at `warehouse_path` (built) to `out_path`."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(render(describe(Path(warehouse_path))))
    return out_path
