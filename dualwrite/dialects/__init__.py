"""SQL dialects: the only place dualwrite builds SQL text."""

from __future__ import annotations

from dualwrite.dialects.base import Dialect, Query
from dualwrite.dialects.mysql import MySQLDialect
from dualwrite.dialects.postgresql import PostgresDialect
from dualwrite.dialects.sqlite import SQLiteDialect

__all__ = ["Dialect", "MySQLDialect", "PostgresDialect", "Query", "SQLiteDialect",
           "dialect_for"]

_BY_NAME: dict[str, type[Dialect]] = {
    "postgresql": PostgresDialect,
    "mysql": MySQLDialect,
    "sqlite": SQLiteDialect,
}


def dialect_for(name: str, paramstyle: str | None = None) -> Dialect:
    """The dialect for a database family name (``postgresql``, ``mysql``, ``sqlite``)."""
    cls = _BY_NAME[name]
    return cls(paramstyle) if paramstyle else cls()
