"""Bad configuration fails at install time with a clear error, and installs nothing."""

from __future__ import annotations

import logging
from typing import Any

import dualwrite_sqlalchemy
import pytest
from sqlalchemy.orm import Session, sessionmaker

from dualwrite.errors import ConfigurationError, SpecError, UnknownColumnError, UnknownTableError
from dualwrite.spec import ChangeColumnType, MigrationSpec, RenameColumn
from dualwrite.stages import Stage
from tests.integration.sqla.conftest import RENAME, Base, Env, User

BAD: list[tuple[str, MigrationSpec, type[Exception], str]] = [
    ("unmapped new column",
     RenameColumn(key="k1", table="users", old="full_name", new="nickname"),
     UnknownColumnError, "nickname"),
    ("unmapped old column",
     RenameColumn(key="k2", table="users", old="name", new="display_name"),
     UnknownColumnError, "name"),
    ("table without a model",
     RenameColumn(key="k3", table="accounts", old="a", new="b"), UnknownTableError, "accounts"),
    ("no Python transforms",
     ChangeColumnType(key="k4", table="users", old="full_name", new="display_name",
                      forward_sql="UPPER({old})", backward_sql="LOWER({new})"),
     SpecError, "Python"),
    ("no SQL transforms",
     ChangeColumnType(key="k5", table="users", old="full_name", new="display_name",
                      forward=str.upper, backward=str.lower),
     SpecError, "SQL"),
    ("bad placeholder",
     ChangeColumnType(key="k6", table="users", old="full_name", new="display_name",
                      forward=str.upper, backward=str.lower, forward_sql="UPPER({oldd})",
                      backward_sql="LOWER({new})"),
     SpecError, "oldd"),
]


def _listeners(factory: sessionmaker[Any]) -> int:
    with factory() as session:
        d = session.dispatch
        return len(list(d.before_flush)) + len(list(d.do_orm_execute)) + \
            len(list(d.after_begin))


@pytest.mark.parametrize("what, spec, error, names", BAD, ids=[b[0] for b in BAD])
def test_bad_configuration_fails_at_install_and_installs_nothing(
        env: Env, what: str, spec: MigrationSpec, error: type[Exception], names: str) -> None:
    before = _listeners(env.Session)
    with pytest.raises(error) as exc:
        dualwrite_sqlalchemy.install(env.Session, [RENAME, spec], bases=[Base], fleet=False)
    assert names in str(exc.value) and exc.value.hint  # type: ignore[attr-defined]
    assert _listeners(env.Session) == before
    env.walk(Stage.DUALWRITE)          # nothing mirrors: no listener was left behind
    with env.Session() as s:
        s.add(User(id=1, full_name="x"))
        s.commit()
    assert env.raw("users", 1) == ("x", None)


def test_bad_targets_and_arguments(env: Env) -> None:
    with pytest.raises(ConfigurationError, match="engine"):
        dualwrite_sqlalchemy.install(sessionmaker(), [RENAME], bases=[Base])
    with pytest.raises(ConfigurationError, match="sessionmaker"):
        dualwrite_sqlalchemy.install(object(), [RENAME], bind=env.engine, bases=[Base])
    with pytest.raises(ConfigurationError, match="at least one"):
        dualwrite_sqlalchemy.install(env.Session, [], bases=[Base])
    with pytest.raises(ConfigurationError, match="twice"):
        dualwrite_sqlalchemy.install(env.Session, [RENAME, RENAME], bases=[Base], fleet=False)


def test_session_class_target_with_bind(env: Env) -> None:
    class AppSession(Session):
        pass

    handle = dualwrite_sqlalchemy.install(AppSession, [RENAME], bind=env.engine, bases=[Base],
                                          fleet=False, cache_ttl=0)
    env.installed.append(handle)
    env.walk(Stage.DUALWRITE)
    with AppSession(env.engine) as s:
        s.add(User(id=1, full_name="x"))
        s.commit()
    assert env.raw("users", 1) == ("x", "x")


def test_unregistered_migration_serves_off_and_says_so(env: Env,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    spec = RenameColumn(key="not-registered", table="users", old="full_name",
                        new="display_name")
    handle = dualwrite_sqlalchemy.install(env.Session, [spec], bases=[Base], fleet=False,
                                          cache_ttl=0)
    env.installed.append(handle)
    with caplog.at_level(logging.WARNING, logger="dualwrite.sqlalchemy"), env.Session() as s:
        s.add(User(id=1, full_name="x", display_name="y"))
        s.commit()
        assert s.get(User, 1).display_name == "y"          # type: ignore[union-attr]
    assert env.raw("users", 1) == ("x", "y")
    assert handle.stage(spec.key) is Stage.OFF
    assert [r for r in caplog.records if "dualwrite init" in r.getMessage()]
