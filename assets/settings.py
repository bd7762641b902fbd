"""The code location's settings, read once when it loads (pipelines/config.py): the partitions' first day, the
snapshot schedule and the resources are defined from them. A bad value stops the load with an error naming its
variable, what it takes and what it got (the UI shows it as the code location's load error)."""

from pipelines.config import Settings

SETTINGS = Settings.from_env()
