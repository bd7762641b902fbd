"""SQL text with identifiers filled in from closed lists (model, dataset and column names), never values: values
are bound as parameters."""

import re
from collections.abc import Iterable

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def identifier(name: str) -> str:
    if not IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain identifier")
    return name


def quoted(text: str) -> str:
    """A SQL string literal (view definitions cannot take parameters)."""
    return "'" + text.replace("'", "''") + "'"


def sql_text(
    template: str,
    body: str = "",
    literal: str | list[str] = "",
    key: Iterable[str] = (),
    **names: str,
) -> str:
    """`template` with identifiers filled in.

    `body` is a model's own SQL from `sql/`; `literal` a string literal, or a list of them (the lake folder or
    files in a view definition); `key` a model's unique key columns, filled in as a row `(a, b)`.
    """
    identifiers = {name: identifier(value) for name, value in names.items()}
    row = "(" + ", ".join(identifier(column) for column in key) + ")"
    text = quoted(literal) if isinstance(literal, str) else "[" + ", ".join(map(quoted, literal)) + "]"
    return template.format(body=body, literal=text, key=row, **identifiers)
