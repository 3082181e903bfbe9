"""The whole migration under fire, on every backend, for a rename, a type change and a split,
in app mode and in trigger mode.

The choreography expand -> dualwrite -> backfill -> shadow -> live -> rampdown -> complete
-> contract runs while a simulated fleet writes, inserts and reads (dualwrite.simulate):
app writers (the mirror rule of the adapters), legacy writers that know only the old column
(trigger mode only: nothing else can mirror them), and readers that check every value read
against the last acknowledged write. At every stage the migration rolls back one step and
goes forward again. Faults: a lock held on the table during expand, the backfill killed
with SIGKILL mid-run and resumed, every application connection dropped, the flag provider
failing. The run passes only with zero application errors, zero stale or lost reads, a
clean final verify and every unsafe step refused where expected.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails
from openfeature.provider import AbstractProvider, Metadata

from dualwrite.backfill import Backfill, BackfillOptions, Verifier
from dualwrite.db import Database
from dualwrite.ddl import OnlineDdl
from dualwrite.errors import DatabaseError, TransitionRefused
from dualwrite.flags import StageResolver, StateTableProvider
from dualwrite.fleet import FleetMember
from dualwrite.migrator import Migrator
from dualwrite.simulate import OrmClient, Traffic, TrafficReport
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Mode, Stage
from dualwrite.triggers import TriggerInstaller
from tests.e2e import lifecycle_specs
from tests.helpers import q

ROOT = Path(__file__).resolve().parents[2]
ROWS = 400


@dataclass
class Counts:
    """What one run did: reported at the end of the test."""

    transitions: int = 0
    rollbacks: int = 0
    refusals: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)


class FlakyProvider(AbstractProvider):
    """The state-table provider, except while ``broken`` is set (every call raises) or
    ``override`` names a stage (served instead, as an operator's flag change would)."""

    def __init__(self, inner: StateTableProvider) -> None:
        self.inner = inner
        self.broken = threading.Event()
        self.override: str | None = None

    def get_metadata(self) -> Metadata:
        return Metadata(name="flaky")

    def resolve_string_details(self, flag_key: str, default_value: str,
                               evaluation_context: EvaluationContext | None = None
                               ) -> FlagResolutionDetails[str]:
        if self.broken.is_set():
            raise ConnectionError("flag service unreachable")
        if self.override is not None:
            return FlagResolutionDetails(self.override)
        return self.inner.resolve_string_details(flag_key, default_value, evaluation_context)

    def resolve_boolean_details(self, *a: Any, **k: Any) -> Any:
        raise NotImplementedError

    resolve_integer_details = resolve_float_details = resolve_object_details = \
        resolve_boolean_details


class Run:
    """One migration driven through its whole life under traffic."""

    def __init__(self, db: Database, url: str, spec: MigrationSpec, domain: str) -> None:
        self.db, self.url, self.spec = db, url, spec
        self.key = spec.key
        self.counts = Counts()
        self.migrator = Migrator(db, [spec], actor="lifecycle")
        self.ddl = OnlineDdl(self.migrator)
        self.provider = FlakyProvider(StateTableProvider(db, ttl=0.05))
        api.set_provider(self.provider, domain)
        self.resolver = StageResolver(db, client=api.get_client(domain), ttl=0.05)
        self.member = FleetMember(db, instance_id=f"lifecycle-{domain}")

    @classmethod
    def on(cls, db: Database, db_url: str, spec: MigrationSpec,
           request: pytest.FixtureRequest) -> Run:
        """A run on a fresh lifecycle table of ``db``, through its own connection (on
        PostgreSQL tagged with an application_name the connection-dropping fault finds);
        ``run.db.close()`` when done."""
        lifecycle_specs.create_table(db)
        url = db_url
        if db.dialect.name == "postgresql":
            url += ("&" if "?" in url else "?") + f"application_name=dwlc{uuid.uuid4().hex[:10]}"
        return cls(Database.from_url(url), url, spec, domain=f"lifecycle-{request.node.name}")

    def served(self) -> Stage:
        stage = self.resolver.stage(self.key)
        self.member.observe(self.key, stage)
        return stage

    # -- moves ---------------------------------------------------------------------------
    def _until_fleet_follows(self, move: Callable[[], Any]) -> None:
        """Retry a move refused only because the fleet has not picked the stage up yet."""
        deadline = time.monotonic() + 10
        while True:
            try:
                move()
                return
            except TransitionRefused as exc:
                if "instance" not in (exc.reason or "") or time.monotonic() > deadline:
                    raise
                self.served()
                self.member.beat()
                time.sleep(0.05)

    def advance(self, to: Stage, **kw: Any) -> None:
        self._until_fleet_follows(lambda: self.migrator.advance(self.key, to, **kw))
        self.counts.transitions += 1
        self.settle()

    def rollback(self, to: Stage) -> None:
        self._until_fleet_follows(lambda: self.migrator.rollback(self.key, to))
        self.counts.rollbacks += 1
        self.settle()

    def refused(self, move: Callable[[], Any], why: str) -> None:
        """``move`` must be refused (and change nothing)."""
        before = self.migrator.state.get(self.key).stage
        with pytest.raises(TransitionRefused):
            move()
        assert self.migrator.state.get(self.key).stage is before
        self.counts.refusals.append(why)

    def settle(self, seconds: float = 0.25) -> None:
        """Let the traffic run at the new stage (the flag cache is 50 ms)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.served()
            self.member.beat()
            time.sleep(0.05)

    def back_and_forth(self, stage: Stage, before: Stage,
                       prepare_forward: Callable[[], None] | None = None) -> None:
        """pgroll's start -> rollback -> start: one step back, then forward again."""
        self.rollback(before)
        if prepare_forward:
            prepare_forward()
        self.advance(stage)

    # -- faults --------------------------------------------------------------------------
    @contextmanager
    def table_locked(self) -> Iterator[None]:
        """Another session holds a lock on the table that DDL must wait for."""
        holder = Database.from_url(self.url)
        d = holder.dialect
        ready, release = threading.Event(), threading.Event()

        def hold() -> None:
            with holder.transaction() as tx:
                tx.fetchall(d.select_row(self.spec, "id", 1, [d.quote("id")]))
                if d.name == "sqlite":
                    tx.execute(d.update_row(self.spec, "id", 1, ["id"], [1]))
                ready.set()
                release.wait(5)

        t = threading.Thread(target=hold)
        t.start()
        ready.wait(5)
        try:
            threading.Timer(1.0, release.set).start()
            yield
        finally:
            release.set()
            t.join()
            holder.close()
            self.counts.faults.append("lock held during expand")

    def kill_backfill_then_resume(self) -> None:
        """Run the backfill in a subprocess, SIGKILL it after its first batches, resume."""
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "dualwrite", "--database-url", self.url, "--spec",
               f"tests.e2e.lifecycle_specs:{lifecycle_specs.NAMES[self.key]}", "backfill",
               self.key, "--batch-size", "20", "--sleep", "0.05"]
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while (Backfill(self.db, self.spec).status().get("rows_done") or 0) < 40:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the backfill never made progress"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.counts.faults.append("backfill killed with SIGKILL")
        # The dead process's lease would expire after lease_seconds (30 s); expire it now.
        self.db.execute(("UPDATE dualwrite_backfill SET lease_expires_at = started_at", ()))
        result = Backfill(self.db, self.spec).run()
        assert result.finished, result

    def drop_connections(self) -> None:
        """Kill every session of this test's application from the server side."""
        if self.db.dialect.name == "sqlite":
            return  # no server, no sessions to kill
        killer = Database.from_url(self.url)
        try:
            if killer.dialect.name == "postgresql":
                killed = killer.fetchall((
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                    "application_name = current_setting('application_name') "
                    "AND pid <> pg_backend_pid()", ()))
            else:
                killed = killer.fetchall((
                    "SELECT id FROM information_schema.processlist WHERE db = DATABASE() "
                    "AND id <> CONNECTION_ID()", ()))
                for (session,) in killed:
                    with contextlib.suppress(DatabaseError):
                        killer.execute((f"KILL CONNECTION {int(session)}", ()))
        finally:
            killer.close()
        assert killed, "no application session was found to kill"
        self.counts.faults.append(f"{len(killed)} application connections dropped")

    @contextmanager
    def flags_down(self) -> Iterator[None]:
        self.provider.broken.set()
        try:
            yield
        finally:
            self.provider.broken.clear()
            self.counts.faults.append("flag provider failed")

    def verify(self, direction: str = "forward") -> None:
        report = Verifier(self.db, self.spec, direction=direction, fix=False).run()
        assert report.clean, report.to_dict()


def run_lifecycle(run: Run, mode: Mode, orm: OrmClient | None = None) -> TrafficReport:
    spec, key = run.spec, run.key
    m = run.migrator
    m.init()
    traffic = Traffic(run.db, spec, run.served, keys=range(1, ROWS + 1),
                      app_writers=1 if orm else 2, orm=orm, orm_writers=2 if orm else 0,
                      legacy_writers=1 if mode is Mode.TRIGGER else 0, readers=2,
                      values=lifecycle_specs.VALUES[key], pace=0.002)
    with traffic:
        run.refused(lambda: m.advance(key, Stage.EXPAND), "expand before the column exists")
        with run.table_locked():
            run.ddl.expand(key)
        deployed = getattr(orm, "deployed", None)
        if deployed is not None:  # an ORM application (SqlaApp, DjangoApp) maps the new
            deployed.set()        # column: deploy it now
        run.settle()
        if mode is Mode.TRIGGER:
            run.refused(lambda: m.advance(key, Stage.DUALWRITE), "trigger mode, no triggers")
            TriggerInstaller(run.db).install(spec)
        run.advance(Stage.DUALWRITE)
        run.back_and_forth(Stage.DUALWRITE, Stage.EXPAND)
        run.kill_backfill_then_resume()
        run.advance(Stage.SHADOW)
        run.back_and_forth(Stage.SHADOW, Stage.DUALWRITE)
        run.refused(lambda: m.advance(key, Stage.LIVE), "live before a verify")
        run.drop_connections()
        run.settle()
        run.verify()
        run.advance(Stage.LIVE)
        run.back_and_forth(Stage.LIVE, Stage.SHADOW, prepare_forward=run.verify)
        with run.flags_down():
            run.settle(0.3)
        run.advance(Stage.RAMPDOWN)
        run.back_and_forth(Stage.RAMPDOWN, Stage.LIVE)
        run.advance(Stage.COMPLETE)
        if mode is Mode.APP:
            # Only the new column is written at complete: going back needs old = g(new).
            run.refused(lambda: m.rollback(key, Stage.RAMPDOWN),
                        "rollback from complete before a reverse backfill")
            # The documented way back: the flag sends the fleet to rampdown (writes reach
            # both columns again; the ceiling allows one step behind), then old = g(new).
            run.provider.override = Stage.RAMPDOWN.value
            run.settle()
            Backfill(run.db, spec, BackfillOptions(direction="reverse")).run()
            run.verify("reverse")
            run.rollback(Stage.RAMPDOWN)
            run.provider.override = None
            run.advance(Stage.COMPLETE)
        else:
            run.back_and_forth(Stage.COMPLETE, Stage.RAMPDOWN)
    report = traffic.report
    run.member.stop()
    run.refused(lambda: run.ddl.contract(key), "contract without --confirm")
    run.ddl.contract(key, confirm=key)
    assert run.migrator.state.get(key).stage is Stage.CONTRACT
    return report


@pytest.mark.parametrize("mode", [Mode.APP, Mode.TRIGGER], ids=["app", "trigger"])
@pytest.mark.parametrize("kind", ["rename", "change_type", "split"])
def test_whole_migration_under_fire(db: Database, db_url: str, kind: str, mode: Mode,
                                    request: pytest.FixtureRequest) -> None:
    spec = lifecycle_specs.spec(kind, mode)
    run = Run.on(db, db_url, spec, request)
    try:
        report = run_lifecycle(run, mode)
    finally:
        run.db.close()
    c = run.counts
    print(f"\n{kind}/{mode.value} on {db.dialect.name}: {report.operations} operations "
          f"({report.writes} writes, {report.inserts} inserts, {report.reads} reads, "
          f"{report.retries} retried), {c.transitions} transitions, {c.rollbacks} rollbacks, "
          f"{len(c.faults)} faults, {len(c.refusals)} refusals")
    assert report.clean, (report.errors[:5], report.stale_reads[:5])
    assert report.writes and report.inserts and report.reads
    assert set(report.by_stage) >= {"dualwrite", "shadow", "live", "rampdown", "complete"}
    assert len(c.faults) == (3 if db.dialect.name == "sqlite" else 4), c.faults
    assert c.rollbacks == 5 and len(c.refusals) >= 3
    rows = db.fetchone((f"SELECT COUNT(*) FROM {q(db, spec.table)}", ()))
    assert rows is not None and rows[0] > ROWS


class SqlaApp:
    """An application written with SQLAlchemy and the dualwrite adapter (OrmClient)."""

    def __init__(self, url: str, spec: MigrationSpec, client: Any) -> None:
        import dualwrite_sqlalchemy
        from sqlalchemy import create_engine
        from sqlalchemy.orm import sessionmaker

        scheme, rest = url.split("://", 1)
        driver = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}.get(scheme,
                                                                                  scheme)
        self.engine = create_engine(f"{driver}://{rest}", pool_pre_ping=True)
        self.deployed = threading.Event()
        self.Session = sessionmaker(self.engine)
        self.handle = dualwrite_sqlalchemy.install(
            self.Session, [spec], client=client, bases=[lifecycle_specs.LcBase],
            cache_ttl=0.05, heartbeat_interval=0.2, instance_id="lifecycle-sqlalchemy")

    def ready(self) -> bool:
        return self.deployed.is_set()

    def _once(self, key: int, values: Any, insert: bool) -> None:
        with self.Session() as s:
            row = lifecycle_specs.LcUser(id=key) if insert else s.get(lifecycle_specs.LcUser, key)
            assert row is not None, f"row {key} is gone"
            for column, value in values.items():
                setattr(row, column, value)
            if insert:
                s.add(row)
            s.commit()

    def write(self, key: int, values: Any, insert: bool) -> None:
        from sqlalchemy.exc import DBAPIError

        try:
            self._once(key, values, insert)
        except DBAPIError:  # a dropped connection: retry once, as a request handler would
            if insert and self.read_or_none(key) is not None:
                return  # the commit went through; only its answer was lost
            self._once(key, values, insert)

    def read_or_none(self, key: int) -> dict[str, Any] | None:
        with self.Session() as s:
            row = s.get(lifecycle_specs.LcUser, key)
            return None if row is None else {"full_name": row.full_name}

    def read(self, key: int) -> dict[str, Any]:
        from sqlalchemy.exc import DBAPIError

        try:
            found = self.read_or_none(key)
        except DBAPIError:
            found = self.read_or_none(key)
        assert found is not None, f"row {key} is gone"
        return found

    def close(self) -> None:
        self.handle.uninstall()
        self.engine.dispose()


def test_sqlalchemy_application_through_the_lifecycle(db: Database, db_url: str,
                                                      request: pytest.FixtureRequest) -> None:
    """The same choreography with two writer threads of a SQLAlchemy application (the
    adapter mirrors and routes) beside a core writer, each checking what it reads back."""
    spec = lifecycle_specs.RENAME
    run = Run.on(db, db_url, spec, request)
    orm = SqlaApp(run.url, spec, run.resolver.client)
    try:
        report = run_lifecycle(run, Mode.APP, orm)
    finally:
        orm.close()
        run.db.close()
    print(f"\nsqlalchemy/app on {db.dialect.name}: {report.operations} operations, "
          f"{report.retries} retried, {run.counts.rollbacks} rollbacks, "
          f"{len(run.counts.faults)} faults")
    assert report.clean, (report.errors[:5], report.stale_reads[:5])
    assert report.writes and report.reads
