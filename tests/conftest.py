"""The real-database test rig.

Servers come from ``DUALWRITE_TEST_POSTGRES_URL`` / ``DUALWRITE_TEST_MYSQL_URL``, else from
testcontainers when a Docker daemon answers, else from the local default ports. With
``DUALWRITE_REQUIRE_BACKENDS=postgresql,mysql`` a missing server fails the tests that need
it instead of skipping them. Every test gets its own PostgreSQL schema, MySQL database or
SQLite file.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dualwrite.db import Database

LOCAL_DEFAULTS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/test",
    "mysql": "mysql://root@127.0.0.1:3306/test",
}
ENV_VARS = {"postgresql": "DUALWRITE_TEST_POSTGRES_URL", "mysql": "DUALWRITE_TEST_MYSQL_URL"}
BACKENDS = ("sqlite", "postgresql", "mysql")


def _required() -> set[str]:
    raw = os.environ.get("DUALWRITE_REQUIRE_BACKENDS", "")
    return {b.strip() for b in raw.split(",") if b.strip()}


def _answers(url: str) -> str | None:
    """None if a connection works, else the error."""
    db = Database.from_url(url)
    try:
        db.fetchone(("SELECT 1", ()))
        return None
    except Exception as exc:  # noqa: BLE001 -- any failure means "not available"
        return str(exc)
    finally:
        db.close()


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001
        return False


class _Servers:
    def __init__(self) -> None:
        self.urls: dict[str, str | None] = {}
        self.errors: dict[str, str] = {}
        self._containers: list[Any] = []

    def _container_url(self, kind: str) -> str:
        if kind == "postgresql":
            from testcontainers.postgres import PostgresContainer

            pg = PostgresContainer("postgres:15", username="postgres", password="postgres",
                                   dbname="test")
            pg.start()
            self._containers.append(pg)
            return str(pg.get_connection_url(driver=None))
        from testcontainers.mysql import MySqlContainer

        my = MySqlContainer("mysql:8.0", root_password="test", dbname="test")
        my.start()
        self._containers.append(my)
        return (f"mysql://root:test@{my.get_container_host_ip()}:"
                f"{my.get_exposed_port(3306)}/test")

    def url(self, kind: str) -> str | None:
        if kind in self.urls:
            return self.urls[kind]
        url = os.environ.get(ENV_VARS[kind])
        if not url and _docker_answers():
            try:
                url = self._container_url(kind)
            except Exception as exc:  # noqa: BLE001
                self.errors[kind] = f"testcontainers failed: {exc}"
        url = url or LOCAL_DEFAULTS[kind]
        err = _answers(url)
        if err is not None:
            self.errors[kind] = f"{url}: {err}"
            url = None
        self.urls[kind] = url
        return url

    def stop(self) -> None:
        for c in self._containers:
            with contextlib.suppress(Exception):
                c.stop()


@pytest.fixture(scope="session")
def servers() -> Iterator[_Servers]:
    s = _Servers()
    yield s
    s.stop()


def _server_or_skip(servers: _Servers, kind: str) -> str:
    url = servers.url(kind)
    if url is None:
        msg = f"{kind} server not available: {servers.errors.get(kind)}"
        if kind in _required():
            pytest.fail(msg + " (required by DUALWRITE_REQUIRE_BACKENDS)")
        pytest.skip(msg)
    return url


def _with_query(url: str, extra: str) -> str:
    return url + ("&" if "?" in url else "?") + extra


@contextlib.contextmanager
def isolated_url(servers: _Servers, kind: str, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh, empty schema/database/file of ``kind``; removed afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    base = _server_or_skip(servers, kind)
    name = f"dw_{uuid.uuid4().hex[:12]}"
    admin = Database.from_url(base)
    try:
        if kind == "postgresql":
            admin.execute((f'CREATE SCHEMA "{name}"', ()))
            url = _with_query(base, f"options=-csearch_path%3D{name}")
        else:
            admin.execute((f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4", ()))
            scheme, rest = base.split("://", 1)
            netloc = rest.split("/", 1)[0]
            url = f"{scheme}://{netloc}/{name}"
        yield url
    finally:
        with contextlib.suppress(Exception):
            if kind == "postgresql":
                admin.execute((f'DROP SCHEMA IF EXISTS "{name}" CASCADE', ()))
            else:
                admin.execute((f"DROP DATABASE IF EXISTS `{name}`", ()))
        admin.close()


@pytest.fixture(params=[pytest.param(b, marks=getattr(pytest.mark, b)) for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: sqlite, postgresql or mysql."""
    return str(request.param)


@pytest.fixture
def db_url(backend: str, servers: _Servers, tmp_path: Path) -> Iterator[str]:
    """A URL to an isolated, empty database of the current backend."""
    with isolated_url(servers, backend, tmp_path) as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A :class:`Database` on an isolated, empty database of the current backend."""
    database = Database.from_url(db_url)
    yield database
    database.close()
