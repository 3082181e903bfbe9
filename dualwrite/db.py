"""Connections: one small wrapper over DB-API drivers (psycopg 3, PyMySQL, sqlite3).

The core never imports an ORM. A :class:`Database` hands out one connection per thread
(reconnecting after a failure), runs :data:`~dualwrite.dialects.Query` tuples in explicit
transactions, and turns driver errors into :class:`~dualwrite.errors.DatabaseError`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from dualwrite.dialects import Dialect, Query, dialect_for
from dualwrite.errors import ConfigurationError, DatabaseError

__all__ = ["Database", "Transaction", "redact_url"]

CONNECT_TIMEOUT_S = 5


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


class Transaction:
    """An open transaction: run queries, read rows."""

    def __init__(self, cursor: Any, database: Database) -> None:
        self._cursor = cursor
        self._db = database

    def execute(self, query: Query) -> int:
        """Run one statement; the affected row count."""
        sql, params = query
        self._cursor.execute(sql, params)
        return int(self._cursor.rowcount)

    def fetchall(self, query: Query) -> list[tuple[Any, ...]]:
        """Run a query; all its rows."""
        sql, params = query
        self._cursor.execute(sql, params)
        return [tuple(r) for r in self._cursor.fetchall()]

    def fetchone(self, query: Query) -> tuple[Any, ...] | None:
        """Run a query; its first row or ``None``."""
        rows = self.fetchall(query)
        return rows[0] if rows else None

    def fetchall_named(self, query: Query) -> list[dict[str, Any]]:
        """Run a query; all its rows as ``{column name: value}`` (for ``SHOW`` statements
        whose columns differ between server versions)."""
        sql, params = query
        self._cursor.execute(sql, params)
        names = [str(c[0]) for c in (self._cursor.description or ())]
        return [dict(zip(names, r, strict=True)) for r in self._cursor.fetchall()]


def _sqlite_connect(path: str) -> Callable[[], Any]:
    def connect() -> Any:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn
    return connect


def _postgres_connect(url: str) -> Callable[[], Any]:
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigurationError("PostgreSQL needs the psycopg driver",
                                 hint="pip install 'dualwrite[postgresql]'") from exc
    conninfo = "postgresql://" + url.split("://", 1)[1]

    def connect() -> Any:
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    return connect


def _mysql_connect(url: str) -> Callable[[], Any]:
    try:
        import pymysql
    except ImportError as exc:
        raise ConfigurationError("MySQL/MariaDB needs the PyMySQL driver",
                                 hint="pip install 'dualwrite[mysql]'") from exc
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    kwargs: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": unquote(parts.path.lstrip("/")) or None,
        "charset": query.pop("charset", "utf8mb4"),
        "autocommit": True,
        "connect_timeout": CONNECT_TIMEOUT_S,
    }
    if "unix_socket" in query:
        kwargs["unix_socket"] = query.pop("unix_socket")

    def connect() -> Any:
        conn = pymysql.connect(**kwargs)
        with conn.cursor() as cur:
            cur.execute("SET SESSION time_zone = '+00:00'")
        return conn
    return connect


class Database:
    """A database dualwrite works on: a connection factory and its :class:`Dialect`.

    Build one with :meth:`from_url`, or pass any DB-API ``connect`` callable (an ORM's raw
    connection, say) with the matching dialect. Connections are kept one per thread; those of
    threads that have ended are closed when a new one is opened (a thread-per-request server
    would otherwise leave one open per request thread).
    """

    def __init__(self, connect: Callable[[], Any], dialect: Dialect, *,
                 url: str | None = None) -> None:
        self._connect = connect
        self.dialect = dialect
        self.url = url
        self._local = threading.local()
        self._all: list[tuple[threading.Thread, Any]] = []  # (opened by, connection)
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> Database:
        """A database from a URL: ``postgresql://``, ``mysql://`` (or ``mariadb://``),
        ``sqlite:///relative.db``, ``sqlite:////absolute.db``. ``+driver`` suffixes are
        accepted and ignored."""
        if not url or "://" not in url:
            raise ConfigurationError(f"not a database URL: {url!r}",
                                     hint="use e.g. postgresql://user@host/db, mysql://root@host/db "
                                          "or sqlite:///dualwrite.db")
        scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
        if scheme in ("postgresql", "postgres"):
            return cls(_postgres_connect(url), dialect_for("postgresql"), url=url)
        if scheme in ("mysql", "mariadb"):
            return cls(_mysql_connect(url), dialect_for("mysql"), url=url)
        if scheme == "sqlite":
            path = url.split("://", 1)[1]
            path = path[1:] if path.startswith("/") else path
            if path in ("", ":memory:"):
                raise ConfigurationError("an in-memory SQLite database cannot be shared between "
                                         "connections", hint="use a file: sqlite:///dualwrite.db")
            return cls(_sqlite_connect(unquote(path)), dialect_for("sqlite"), url=url)
        raise ConfigurationError(f"unsupported database URL scheme {scheme!r}",
                                 hint="use postgresql://, mysql:// or sqlite:///")

    @property
    def display_url(self) -> str:
        """The URL without its password."""
        return redact_url(self.url) if self.url else f"<{self.dialect.name} connection>"

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self._close_orphans()
            try:
                conn = self._connect()
            except ConfigurationError:
                raise
            except Exception as exc:
                raise DatabaseError(f"could not connect to {self.display_url}: {exc}".strip(),
                                    hint="check --database-url / DUALWRITE_DATABASE_URL and that "
                                         "the server is up", cause=exc) from exc
            self._local.conn = conn
            with self._lock:
                self._all.append((threading.current_thread(), conn))
        return conn

    def _close_orphans(self) -> None:
        """Close the connections of threads that have ended (nothing else can use them)."""
        with self._lock:
            orphans = [c for t, c in self._all if not t.is_alive()]
            self._all = [(t, c) for t, c in self._all if t.is_alive()]
        for c in orphans:
            with contextlib.suppress(Exception):
                c.close()

    def _discard(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                self._all = [(t, c) for t, c in self._all if c is not conn]
            try:
                conn.close()
            except Exception:  # noqa: BLE001 -- closing a broken connection may fail too
                pass

    def _begin(self, read_only: bool = False) -> Any:
        """A cursor on this thread's connection with a transaction begun.

        A connection that died while idle (server restart, killed session, network) fails
        at BEGIN, before anything ran: it is replaced once, which is always safe.
        """
        for attempt in (1, 2):
            cur = self._connection().cursor()
            try:
                cur.execute(self.dialect.begin_read_sql if read_only else self.dialect.begin_sql)
                return cur
            except Exception as exc:
                if not _is_driver_error(exc):
                    raise
                with contextlib.suppress(Exception):
                    cur.close()
                self._discard()
                if attempt == 2:
                    raise DatabaseError(f"{self.dialect.name} error: {exc}", cause=exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[Transaction]:
        """One transaction on this thread's connection: committed on success, rolled back
        on error. Driver errors come out as :class:`DatabaseError` (``cause`` holds the
        original); the connection is replaced after one. ``read_only`` transactions take
        no write lock up front (SQLite), so a read never waits for another writer."""
        cur = self._begin(read_only)
        try:
            yield Transaction(cur, self)
            cur.execute("COMMIT")
        except BaseException as exc:
            try:
                cur.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 -- the connection may be gone
                self._discard()
            if isinstance(exc, Exception) and not isinstance(exc, (DatabaseError,)) and \
                    _is_driver_error(exc):
                self._discard()
                raise DatabaseError(f"{self.dialect.name} error: {exc}", cause=exc) from exc
            raise
        finally:
            try:
                cur.close()
            except Exception:  # noqa: BLE001
                pass

    def fetchall(self, query: Query) -> list[tuple[Any, ...]]:
        """Run one query in its own (read) transaction; all rows."""
        with self.transaction(read_only=True) as tx:
            return tx.fetchall(query)

    def fetchone(self, query: Query) -> tuple[Any, ...] | None:
        """Run one query in its own (read) transaction; the first row or ``None``."""
        with self.transaction(read_only=True) as tx:
            return tx.fetchone(query)

    def execute(self, query: Query) -> int:
        """Run one statement in its own transaction; the affected row count."""
        with self.transaction() as tx:
            return tx.execute(query)

    def execute_autocommit(self, query: Query) -> int:
        """Run one statement outside any transaction, on this thread's connection.

        For statements that refuse to run inside one (``CREATE INDEX CONCURRENTLY``) and for
        session settings (``SET lock_timeout``) that must outlive a statement. Driver errors
        come out as :class:`DatabaseError` (``cause`` holds the original); the connection is
        replaced after one, so session settings must be set again.
        """
        conn = self._connection()
        sql, params = query
        try:
            with contextlib.closing(conn.cursor()) as cur:
                cur.execute(sql, params)
                return int(cur.rowcount)
        except Exception as exc:
            if not _is_driver_error(exc):
                raise
            self._discard()
            raise DatabaseError(f"{self.dialect.name} error: {exc}", cause=exc) from exc

    def close(self) -> None:
        """Close every connection this object opened."""
        with self._lock:
            conns, self._all = [c for _, c in self._all], []
        for c in conns:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
        self._local = threading.local()


def _is_driver_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a DB-API driver (any PEP 249 ``Error``)."""
    for klass in type(exc).__mro__:
        if klass.__name__ in ("Error", "DatabaseError", "InterfaceError") and \
                klass.__module__.split(".")[0] in ("psycopg", "pymysql", "sqlite3", "MySQLdb"):
            return True
    return False
