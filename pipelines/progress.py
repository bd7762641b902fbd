"""In-process progress listeners: the command line draws its progress bar from what ingestion reports."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_listeners: list[Callable[[Any], None]] = []


@contextmanager
def listening(listener: Callable[[Any], None]) -> Iterator[None]:
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def report(event: Any) -> None:
    for listener in list(_listeners):
        listener(event)
