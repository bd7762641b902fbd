"""The test suite: a package, so its helpers import as `tests.*` under one name for pytest and mypy alike."""
