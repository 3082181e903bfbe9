"""A dualwrite :class:`~dualwrite.db.Database` on a Django database alias.

* :func:`database_for`: the state tables are read and written on connections of their own,
  opened by the alias's Django backend with the alias's settings (host, credentials,
  OPTIONS such as a PostgreSQL ``search_path``), in autocommit: a stage change commits at
  once and never joins, commits or blocks the application's transaction.
* :class:`JoinedDatabase`: the opposite, for migration operations: the statements run in
  the Django connection's current transaction, so a recorded step commits or rolls back
  with the DDL next to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections

from dualwrite.db import Database, Transaction, _is_driver_error
from dualwrite.dialects import dialect_for
from dualwrite.errors import ConfigurationError, DatabaseError

__all__ = ["SUPPORTED_VENDORS", "JoinedDatabase", "database_for", "dialect_name"]

#: Django ``connection.vendor`` -> dualwrite dialect name (MariaDB reports ``mysql``).
SUPPORTED_VENDORS = {"postgresql": "postgresql", "mysql": "mysql", "sqlite": "sqlite"}


def dialect_name(alias: str) -> str:
    """The dualwrite dialect of a Django alias, or :class:`ConfigurationError`."""
    vendor = connections[alias].vendor
    try:
        return SUPPORTED_VENDORS[vendor]
    except KeyError:
        raise ConfigurationError(f"database {alias!r} is a {vendor!r} database, which dualwrite "
                                 "does not support", hint="use PostgreSQL, MySQL/MariaDB or SQLite"
                                 ) from None


def _autocommit(conn: Any, vendor: str) -> Any:
    if vendor == "postgresql":
        conn.autocommit = True
    elif vendor == "mysql":
        conn.autocommit(True)
    else:
        conn.isolation_level = None
    return conn


def _connect(alias: str) -> Callable[[], Any]:
    def connect() -> Any:
        wrapper = connections[alias]
        raw = wrapper.get_new_connection(wrapper.get_connection_params())
        return _autocommit(raw, wrapper.vendor)
    return connect


def database_for(alias: str) -> Database:
    """A :class:`Database` on the Django database ``alias`` (no connection opened yet)."""
    if alias not in connections:
        raise ConfigurationError(f"no Django database {alias!r}",
                                 hint="use an alias from settings.DATABASES")
    name = dialect_name(alias)
    settings_name = connections[alias].settings_dict.get("NAME")
    return Database(_connect(alias), dialect_for(name),
                    url=f"django://{alias}/{settings_name}")


class JoinedDatabase(Database):
    """A :class:`Database` whose transactions are the Django connection's current one: no
    BEGIN/COMMIT of its own, statements on the underlying DB-API connection with the
    driver's own parameter style (so SQL renders exactly as the CLI renders it)."""

    def __init__(self, connection: Any) -> None:
        name = dialect_name(connection.alias)
        super().__init__(self._raw, dialect_for(name),
                         url=f"django://{connection.alias}/(current transaction)")
        self._django = connection

    def _raw(self) -> Any:
        self._django.ensure_connection()
        return self._django.connection

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[Transaction]:
        cur = self._raw().cursor()
        try:
            yield Transaction(cur, self)
        except Exception as exc:
            if _is_driver_error(exc):
                raise DatabaseError(f"{self.dialect.name} error: {exc}", cause=exc) from exc
            raise
        finally:
            cur.close()

    def close(self) -> None:
        """Nothing to close: the connection is Django's."""
