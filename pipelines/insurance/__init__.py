"""The insurance trips: Voi's trips as insurers receive them, with personal data, kept apart from the city's data.

An insurance trip carries what no city table may: the vehicle's licence plate, and how many rides its rider has
taken. So this package is a small pipeline of its own beside the city's, sharing its parts but none of its places:

- it runs only when `FLEETLAKE_INSURANCE_TRIPS` is set (`Settings.insurance_trips`);
- its records live in their own lake and their own DuckDB file under `FLEETLAKE_INSURANCE_DIR`
  (`area.InsuranceArea`), every folder 0700 and every file 0600, checked (`area.exposed`); never in the city's
  lake, warehouse, reports, logs or Dagster metadata (the city's warehouse and reports cannot import this package:
  an import-linter contract in pyproject.toml says so);
- after `FLEETLAKE_INSURANCE_RETENTION_DAYS` they are purged from its lake, raw responses and quarantine included,
  and from its warehouse (`purge`).

docs/privacy.md says who may see what.
"""
