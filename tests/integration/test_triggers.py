"""Mirror triggers on every backend: raw-SQL writers, both directions, stages, concurrency,
install/uninstall/status/drift, foreign objects, quoting, failing transforms."""

from __future__ import annotations

import dataclasses
import random
import threading
from typing import Any

import pytest

from dualwrite.db import Database
from dualwrite.errors import (
    DatabaseError,
    DualwriteError,
    ForeignTriggerError,
    SpecError,
    TransitionRefused,
    TriggerError,
)
from dualwrite.migrator import Migrator
from dualwrite.spec import ChangeColumnType, MigrationSpec, RenameColumn
from dualwrite.stages import Mode, Stage
from dualwrite.state import StateStore
from dualwrite.triggers import TriggerInstaller, TriggerState
from tests.helpers import create_table, q, snapshot
from tests.trigger_specs import CENTS, RENAME, SPLIT, orders, people, set_stage, users


def ex(db: Database, sql: str, *params: Any) -> int:
    """Run raw SQL the way any other writer would (``?`` placeholders become the driver's)."""
    return db.execute((sql.replace("?", db.dialect.p), params))


def rows(db: Database, table: str, *cols: str) -> dict[int, tuple[Any, ...]]:
    sel = ", ".join(q(db, c) for c in ("id", *cols))
    return {r[0]: tuple(r[1:]) for r in db.fetchall((f"SELECT {sel} FROM {q(db, table)}", ()))}


def install(db: Database, spec: MigrationSpec) -> TriggerInstaller:
    inst = TriggerInstaller(db)
    assert inst.install(spec).action == "created"
    assert inst.status(spec).current
    return inst


# -- what the triggers do ---------------------------------------------------------------

def test_rename_mirrors_old_only_new_only_both_and_bulk(db: Database) -> None:
    users(db, 6)
    install(db, RENAME)
    ex(db, "UPDATE users SET full_name = ? WHERE id = 1", "old only")
    ex(db, "UPDATE users SET display_name = ? WHERE id = 2", "new only")
    ex(db, "UPDATE users SET full_name = ?, display_name = ? WHERE id = 3", "both-old", "both-new")
    ex(db, "INSERT INTO users (id, full_name) VALUES (10, ?)", "ins old")
    ex(db, "INSERT INTO users (id, display_name) VALUES (11, ?)", "ins new")
    ex(db, "INSERT INTO users (id, full_name, display_name) VALUES (12, ?, ?)", "io", "in")
    ex(db, "INSERT INTO users (id) VALUES (13)")
    ex(db, "UPDATE users SET full_name = NULL WHERE id = 4")
    got = rows(db, "users", "full_name", "display_name")
    assert got[1] == ("old only", "old only")
    assert got[2] == ("new only", "new only")
    assert got[3] == ("both-old", "both-old")  # no stage recorded: old wins
    assert got[10] == ("ins old", "ins old")
    assert got[11] == ("ins new", "ins new")
    assert got[12] == ("io", "io")
    assert got[13] == (None, None)
    assert got[4] == (None, None)
    assert got[5] == ("User 5", None)  # untouched rows are the backfill's job
    # bulk statements: every row mirrored, in both directions
    ex(db, "UPDATE users SET full_name = ? WHERE id > 0", "bulk")
    assert set(rows(db, "users", "full_name", "display_name").values()) == {("bulk", "bulk")}
    ex(db, "UPDATE users SET display_name = ? WHERE id > 0", "bulk2")
    assert set(rows(db, "users", "full_name", "display_name").values()) == {("bulk2", "bulk2")}
    ex(db, "INSERT INTO users (id, full_name) VALUES (20, ?), (21, ?)", "m1", "m2")
    assert rows(db, "users", "display_name")[21] == ("m2",)


def test_type_change_uses_the_sql_transforms(db: Database) -> None:
    orders(db, 4)
    install(db, CENTS)
    ex(db, "UPDATE orders SET price = ? WHERE id = 1", 12.34)
    ex(db, "UPDATE orders SET price_cents = ? WHERE id = 2", 995)
    ex(db, "INSERT INTO orders (id, price_cents) VALUES (9, ?)", 250)
    ex(db, "UPDATE orders SET price = price * 2")  # bulk: f applied once per row, not twice
    got = rows(db, "orders", "price", "price_cents")
    assert got[1] == (pytest.approx(24.68), 2468)
    assert got[2] == (pytest.approx(19.90), 1990)
    assert got[9] == (pytest.approx(5.00), 500)
    for price, cents in got.values():
        assert cents == round(price * 100)


def test_split_fills_every_new_column_and_joins_back(db: Database) -> None:
    people(db, 4)
    install(db, SPLIT)
    ex(db, "UPDATE people SET full_name = ? WHERE id = 1", "Grace Brewster Hopper")
    ex(db, "INSERT INTO people (id, first_name, last_name) VALUES (7, ?, ?)", "Alan", "Turing")
    ex(db, "INSERT INTO people (id, full_name) VALUES (8, ?)", "Cher")
    got = rows(db, "people", "full_name", "first_name", "last_name")
    assert got[1] == ("Grace Brewster Hopper", "Grace", "Brewster Hopper")
    assert got[7] == ("Alan Turing", "Alan", "Turing")
    assert got[8] == ("Cher", "Cher", "")
    ex(db, "UPDATE people SET last_name = ? WHERE id = 1", "Murray")  # one of the new columns
    assert rows(db, "people", "full_name", "first_name", "last_name")[1] == \
        ("Grace Murray", "Grace", "Murray")
    ex(db, "UPDATE people SET full_name = ? WHERE id > 0", "Ada Lovelace")
    assert set(rows(db, "people", "full_name", "first_name", "last_name").values()) == \
        {("Ada Lovelace", "Ada", "Lovelace")}


@pytest.mark.parametrize("stage, winner", [
    (Stage.DUALWRITE, "old"), (Stage.SHADOW, "old"), (Stage.LIVE, "new"),
    (Stage.RAMPDOWN, "new"), (Stage.COMPLETE, "new")])
def test_the_stage_decides_when_both_sides_change(db: Database, stage: Stage,
                                                  winner: str) -> None:
    orders(db, 2)
    install(db, CENTS)
    set_stage(db, CENTS, stage)
    ex(db, "UPDATE orders SET price = ?, price_cents = ? WHERE id = 1", 1.5, 777)
    ex(db, "INSERT INTO orders (id, price, price_cents) VALUES (5, ?, ?)", 2.5, 888)
    got = rows(db, "orders", "price", "price_cents")
    if winner == "old":
        assert got[1] == (pytest.approx(1.5), 150) and got[5] == (pytest.approx(2.5), 250)
    else:
        assert got[1] == (pytest.approx(7.77), 777) and got[5] == (pytest.approx(8.88), 888)


# Per spec kind: setup, the (old column, new column), an old value and a new value for a
# write tag, the old value a new-only write leaves, and the row invariant new == f(old).
CONCURRENT: dict[str, tuple[Any, ...]] = {
    "rename": (RENAME, users, "users", "full_name", "display_name",
               lambda tag: f"v{tag}", lambda tag: f"n{tag}", lambda new: new,
               lambda old, new: old == new),
    "change_type": (CENTS, orders, "orders", "price", "price_cents",
                    lambda tag: tag / 100 + 0.25, lambda tag: tag * 7, lambda new: new / 100,
                    lambda old, new: new == round(old * 100)),
}


@pytest.mark.parametrize("kind", sorted(CONCURRENT))
def test_mixed_concurrent_writers_leave_every_row_consistent(db: Database, kind: str) -> None:
    spec, setup, table, old, new, old_value, new_value, back, consistent = CONCURRENT[kind]
    n_rows, n_threads, per_thread = 30, 4, 40
    setup(db, n_rows)
    install(db, spec)
    start = rows(db, table, old)
    written: dict[int, list[Any]] = {i: [start[i][0]] for i in range(1, n_rows + 1)}
    lock = threading.Lock()
    errors: list[BaseException] = []
    t_, o_, n_ = q(db, table), q(db, old), q(db, new)
    deadlocks = [0]

    def ex_retrying(sql: str, *params: Any) -> None:
        """Two range UPDATEs can deadlock (rows are locked in physical order, which moves as
        rows are rewritten); the server aborts one, and a writer retries it, as apps do."""
        for attempt in range(10):
            try:
                ex(db, sql, *params)
                return
            except DatabaseError as exc:
                if attempt == 9 or not db.dialect.is_lock_timeout(exc.cause):
                    raise
                with lock:
                    deadlocks[0] += 1

    def writer(t: int) -> None:
        rnd = random.Random(t)
        try:
            for j in range(per_thread):
                rid, tag, kind = rnd.randint(1, n_rows), t * 1000 + j, j % 4
                lo = rnd.randint(1, n_rows - 5)
                with lock:
                    if kind == 1:
                        written[rid].append(back(new_value(tag)))
                    elif kind == 3:
                        for r in range(lo, lo + 5):
                            written[r].append(old_value(tag))
                    else:
                        written[rid].append(old_value(tag))
                if kind == 0:
                    ex_retrying(f"UPDATE {t_} SET {o_} = ? WHERE id = ?", old_value(tag), rid)
                elif kind == 1:
                    ex_retrying(f"UPDATE {t_} SET {n_} = ? WHERE id = ?", new_value(tag), rid)
                elif kind == 2:  # both sides, disagreeing: old wins (no stage recorded)
                    ex_retrying(f"UPDATE {t_} SET {o_} = ?, {n_} = ? WHERE id = ?",
                                old_value(tag), new_value(tag + 1), rid)
                else:  # a bulk statement over a range
                    ex_retrying(f"UPDATE {t_} SET {o_} = ? WHERE id >= ? AND id < ?",
                                old_value(tag), lo, lo + 5)
        except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = rows(db, table, old, new)
    assert len(final) == n_rows
    for rid, (o, n) in final.items():
        assert consistent(o, n), f"row {rid}: {o!r} / {n!r}"
        assert any(o == pytest.approx(w) for w in written[rid]), \
            f"row {rid}: {o!r} was never written"


# -- install, status, drift, uninstall ---------------------------------------------------

def test_install_twice_is_idempotent_and_gates_see_the_triggers(db: Database) -> None:
    users(db, 3)
    m = Migrator(db, [RENAME], actor="test")
    m.init()
    m.advance(RENAME.key, Stage.EXPAND)
    with pytest.raises(TransitionRefused, match="mirror triggers") as exc:
        m.advance(RENAME.key)
    assert exc.value.hint == f"run: dualwrite triggers install {RENAME.key}"
    inst = TriggerInstaller(db)
    first = inst.install(RENAME)
    assert first.action == "created" and first.attempts == 1
    assert inst.install(RENAME).action == "unchanged"
    assert inst.status(RENAME).state is TriggerState.INSTALLED
    assert [s.to_stage for s in m.advance(RENAME.key)] == [Stage.DUALWRITE]
    ex(db, "UPDATE users SET full_name = 'x' WHERE id = 1")
    assert rows(db, "users", "display_name")[1] == ("x",)


def test_rollback_from_complete_needs_current_triggers(db: Database) -> None:
    users(db, 2)
    inst = install(db, RENAME)
    set_stage(db, RENAME, Stage.COMPLETE)
    m = Migrator(db, [RENAME], actor="test")
    inst.uninstall(RENAME)
    with pytest.raises(TransitionRefused, match="has not been written since complete"):
        m.rollback(RENAME.key)
    inst.install(RENAME)
    [step] = m.rollback(RENAME.key)
    assert step.to_stage is Stage.RAMPDOWN
    assert step.reason == "the mirror triggers kept the old column in sync"


def test_concurrent_installs_create_the_triggers_once(db: Database) -> None:
    users(db, 3)
    results: list[str] = []
    errors: list[BaseException] = []
    go = threading.Barrier(3)

    def run() -> None:
        try:
            go.wait(10)
            results.append(TriggerInstaller(db).install(RENAME).action)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results.count("created") == 1
    assert sorted(results) == ["created", "unchanged", "unchanged"]
    assert TriggerInstaller(db).status(RENAME).current
    ex(db, "UPDATE users SET display_name = 'once' WHERE id = 2")
    assert rows(db, "users", "full_name")[2] == ("once",)


def test_app_mode_missing_columns_and_python_only_are_refused(db: Database) -> None:
    create_table(db, "users", {"id": "pk", "full_name": "text"})
    before = snapshot(db, "users")
    inst = TriggerInstaller(db)
    with pytest.raises(TriggerError, match="do not exist") as exc:
        inst.install(RENAME)
    assert exc.value.hint and f"dualwrite expand {RENAME.key}" in exc.value.hint
    assert exc.value.table == "users" and exc.value.key == RENAME.key
    app = RenameColumn(key="app-mode", table="users", old="full_name", new="display_name")
    with pytest.raises(TriggerError, match="app mode") as exc:
        inst.install(app)
    assert exc.value.hint and 'mode = "trigger"' in exc.value.hint
    py_only = ChangeColumnType(key="py-only", table="users", old="full_name", new="n",
                               mode=Mode.TRIGGER, forward=str, backward=str)
    with pytest.raises(SpecError, match="no SQL transforms"):
        inst.install(py_only)
    assert snapshot(db, "users") == before
    assert not StateStore(db).is_initialized()  # nothing at all was created


def test_uninstall_while_writes_run(db: Database) -> None:
    users(db, 20)
    inst = install(db, RENAME)
    stop = threading.Event()
    errors: list[BaseException] = []
    count = [0]

    def writer() -> None:
        i = 0
        try:
            while not stop.is_set():
                i += 1
                ex(db, "UPDATE users SET full_name = ? WHERE id = ?", f"w{i}", i % 20 + 1)
                count[0] += 1
                stop.wait(0.002)  # an application, not a tight loop (SQLite has one writer)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        while count[0] < 20:
            stop.wait(0.01)
        result = inst.uninstall(RENAME)
        seen = count[0]
        while count[0] < seen + 20:
            stop.wait(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert result.action == "dropped"
    assert inst.status(RENAME).state is TriggerState.MISSING
    assert inst.uninstall(RENAME).action == "absent"
    ex(db, "UPDATE users SET full_name = 'after' WHERE id = 1")
    assert rows(db, "users", "full_name", "display_name")[1][0] == "after"
    assert rows(db, "users", "display_name")[1] != ("after",)  # no longer mirrored


def _hand_edit(db: Database, inst: TriggerInstaller, spec: MigrationSpec) -> str:
    """Re-create the last object with an extra comment, keeping dualwrite's marker."""
    objs = inst.objects(spec)
    obj = next((o for o in objs if o.kind == "function"), objs[-1])
    with db.transaction() as tx:
        if not obj.replaceable:
            for stmt in obj.drop:
                tx.execute(stmt)
        sql = obj.create[0][0].replace("*/", "*/ /* hand edit */", 1)
        tx.execute((sql, ()))
        for stmt in obj.create[1:]:
            tx.execute(stmt)
    return obj.name


def test_drift_after_a_manual_change_and_repair(db: Database) -> None:
    users(db, 3)
    inst = install(db, RENAME)
    assert inst.drift(RENAME) == []
    name = _hand_edit(db, inst, RENAME)
    st = inst.status(RENAME)
    assert st.state is TriggerState.DRIFTED and not st.current
    [item] = inst.drift(RENAME)
    assert item.name == name and item.state is TriggerState.DRIFTED
    assert any(line.startswith("-") and "hand edit" in line for line in item.diff)
    assert not Migrator(db, [RENAME])._triggers_current(RENAME)
    assert inst.install(RENAME).action == "replaced"
    assert inst.status(RENAME).current and inst.drift(RENAME) == []


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_disabled_trigger_is_drift(db: Database) -> None:
    # (MySQL/MariaDB and SQLite cannot disable a trigger.)
    users(db, 2)
    inst = install(db, RENAME)
    ex(db, f'ALTER TABLE users DISABLE TRIGGER "dualwrite_{RENAME.key}"')
    st = inst.status(RENAME)
    assert st.state is TriggerState.DRIFTED
    assert "disabled" in st.objects[1].detail
    assert inst.install(RENAME).action == "replaced"
    ex(db, "UPDATE users SET full_name = 'on' WHERE id = 1")
    assert rows(db, "users", "display_name")[1] == ("on",)


def test_a_changed_spec_makes_the_triggers_outdated(db: Database) -> None:
    orders(db, 3)
    inst = install(db, CENTS)
    changed = dataclasses.replace(CENTS, backward_sql="{new} / 100.00")
    st = inst.status(changed)
    assert st.state is TriggerState.OUTDATED
    outdated = [o for o in st.objects if o.state is TriggerState.OUTDATED]
    assert outdated  # on PostgreSQL only the function: the trigger's own text is unchanged
    assert all(o.found_digest and o.found_digest != o.expected_digest for o in outdated)
    assert inst.install(changed).action == "replaced"
    assert inst.status(changed).current and inst.status(CENTS).state is TriggerState.OUTDATED


def _foreign_trigger(db: Database, name: str) -> None:
    d = db.dialect.name
    if d == "postgresql":
        ex(db, "CREATE FUNCTION their_fn() RETURNS trigger LANGUAGE plpgsql AS "
               "$$ BEGIN RETURN NEW; END $$")
        ex(db, f"CREATE TRIGGER {q(db, name)} BEFORE UPDATE ON users FOR EACH ROW "
               "EXECUTE FUNCTION their_fn()")
    elif d == "mysql":
        ex(db, f"CREATE TRIGGER {q(db, name)} BEFORE UPDATE ON users FOR EACH ROW "
               "SET NEW.display_name = 'theirs'")
    else:
        ex(db, f"CREATE TRIGGER {q(db, name)} AFTER UPDATE ON users FOR EACH ROW "
               "BEGIN SELECT 1; END")


def test_a_foreign_trigger_is_never_replaced_nor_dropped(db: Database) -> None:
    users(db, 3)
    inst = TriggerInstaller(db)
    name = inst.objects(RENAME)[-1].name
    _foreign_trigger(db, name)
    before = snapshot(db, "users")
    st = inst.status(RENAME)
    assert st.state is TriggerState.FOREIGN
    with pytest.raises(ForeignTriggerError) as exc:
        inst.install(RENAME)
    assert exc.value.objects == [name] and exc.value.key == RENAME.key
    assert exc.value.hint and "never replaced" in str(exc.value.message)
    assert inst.status(RENAME).state is TriggerState.FOREIGN
    assert snapshot(db, "users") == before
    result = inst.uninstall(RENAME)
    assert name in result.skipped_foreign
    assert inst.status(RENAME).state is TriggerState.FOREIGN  # still there


def test_names_needing_quoting_and_long_keys(db: Database) -> None:
    table, old, new = 'user "list"', "full name", "display-name"
    create_table(db, table, {"id": "pk", old: "text", new: "text"})
    key = "team.a-" + "x" * 90
    spec = RenameColumn(key=key, table=table, old=old, new=new, mode=Mode.TRIGGER)
    inst = TriggerInstaller(db)
    names = {o.name for o in inst.objects(spec)}
    d = db.dialect
    assert all(d.identifier_length(n) <= d.max_identifier_length for n in names)
    assert inst.install(spec).action == "created" and inst.status(spec).current
    ex(db, f"INSERT INTO {q(db, table)} (id, {q(db, old)}) VALUES (1, ?)", "it's \"odd\"")
    ex(db, f"UPDATE {q(db, table)} SET {q(db, new)} = ? WHERE id = 1", "back`tick")
    assert rows(db, table, old, new)[1] == ("back`tick", "back`tick")
    other = RenameColumn(key="team.a-" + "x" * 89 + "y", table=table, old=old, new=new,
                         mode=Mode.TRIGGER)
    assert {o.name for o in inst.objects(other)}.isdisjoint(names)
    assert inst.uninstall(spec).action == "dropped"


# -- failing transforms ------------------------------------------------------------------

CODES = ChangeColumnType(
    key="codes-num", table="codes", old="code", new="code_num", mode=Mode.TRIGGER,
    forward_sql={"postgresql": "CAST({old} AS BIGINT)", "mysql": "CAST({old} AS SIGNED)",
                 "sqlite": "{old}"},  # SQLite never fails a CAST; its STRICT table does
    backward_sql={"postgresql": "CAST({new} AS TEXT)", "mysql": "CAST({new} AS CHAR)",
                  "sqlite": "CAST({new} AS TEXT)"})


def _codes(db: Database, values: list[str]) -> None:
    d = db.dialect.name
    strict = " STRICT" if d == "sqlite" else ""
    text = {"postgresql": "TEXT", "mysql": "VARCHAR(50)", "sqlite": "TEXT"}[d]
    ex(db, f"CREATE TABLE codes (id INTEGER PRIMARY KEY, code {text}, code_num "
           f"{'INTEGER' if d == 'sqlite' else 'BIGINT'}){strict}")
    for i, v in enumerate(values, 1):
        ex(db, "INSERT INTO codes (id, code) VALUES (?, ?)", i, v)


def test_a_failing_transform_rolls_the_write_back_with_a_clear_error(db: Database) -> None:
    _codes(db, ["1", "2"])
    inst = install(db, CODES)
    ex(db, "UPDATE codes SET code = '42' WHERE id = 1")
    before = snapshot(db, "codes")
    with pytest.raises(DualwriteError) as exc:
        ex(db, "UPDATE codes SET code = 'abc' WHERE id > 0")  # bulk: row 1 ok, all fail
    message = str(exc.value)
    if db.dialect.name == "sqlite":
        assert "cannot store TEXT value in INTEGER column codes.code_num" in message
    else:
        assert "dualwrite codes-num: the forward transform failed on table codes" in message
        assert "abc" in message
    with pytest.raises(DualwriteError):
        ex(db, "INSERT INTO codes (id, code) VALUES (9, 'x9')")
    assert snapshot(db, "codes") == before
    assert inst.status(CODES).current


@pytest.mark.parametrize("backend", ["postgresql", "mysql"], indirect=True)
def test_install_refuses_a_transform_that_fails_on_existing_rows(db: Database) -> None:
    # (SQLite evaluates any CAST without error: there the write itself fails, see above.)
    _codes(db, ["1", "abc", "3"])
    before = snapshot(db, "codes")
    inst = TriggerInstaller(db)
    with pytest.raises(TriggerError, match="the forward SQL transform fails on existing rows") \
            as exc:
        inst.install(CODES)
    assert "abc" in str(exc.value) and exc.value.hint and "nothing was installed" in exc.value.hint
    assert inst.status(CODES).state is TriggerState.MISSING
    assert snapshot(db, "codes") == before


# -- locks -------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["postgresql", "mysql"], indirect=True)
def test_install_waits_for_the_lock_with_a_timeout_and_retries(db: Database,
                                                               db_url: str) -> None:
    # (SQLite has one writer at a time and a busy timeout instead of lock queues.)
    users(db, 3)
    holder = Database.from_url(db_url)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # an application transaction that stays open on the table
        with holder.transaction() as tx:
            tx.execute(("UPDATE users SET full_name = full_name WHERE id = 1", ()))
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    try:
        held.wait(10)
        impatient = TriggerInstaller(db, lock_timeout=0.2, retries=0, backoff=0.05)
        with pytest.raises(TriggerError, match="could not lock table 'users'") as exc:
            impatient.install(RENAME)
        assert exc.value.hint and "long transaction" in exc.value.hint
        assert impatient.status(RENAME).state is TriggerState.MISSING
        # MySQL counts lock_wait_timeout in whole seconds: release after the first attempt
        timer = threading.Timer(1.3 if db.dialect.name == "mysql" else 0.3, release.set)
        timer.start()
        patient = TriggerInstaller(db, lock_timeout=0.2, retries=20, backoff=0.05)
        result = patient.install(RENAME)
        assert result.action == "created" and result.attempts >= 2
    finally:
        release.set()
        t.join()
        holder.close()
    assert TriggerInstaller(db).status(RENAME).current


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_guards_hold_with_recursive_triggers_on(db: Database, db_url: str) -> None:
    # (PostgreSQL and MySQL use BEFORE triggers that assign NEW: nothing can re-fire.)
    import sqlite3

    orders(db, 2)
    install(db, CENTS)
    conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        conn.execute("PRAGMA recursive_triggers = ON")
        assert conn.execute("PRAGMA recursive_triggers").fetchone() == (1,)
        conn.execute("UPDATE orders SET price = 1.234 WHERE id = 1")  # lossy: f then g != id
        conn.execute("UPDATE orders SET price_cents = 555 WHERE id = 2")
        conn.execute("INSERT INTO orders (id, price) VALUES (3, 9.999)")
    finally:
        conn.close()
    got = rows(db, "orders", "price", "price_cents")
    assert got[1] == (1.234, 123)  # old kept as written: g(f(old)) was not written back
    assert got[2] == (5.55, 555)
    assert got[3] == (9.999, 1000)


def test_the_backfill_in_trigger_mode_never_rewrites_the_old_column(db: Database) -> None:
    from dualwrite.backfill import Backfill, BackfillOptions

    orders(db, 0)
    prices = {i: round(i + 0.001 * (i % 4 + 1), 3) for i in range(1, 41)}  # g(f(old)) != old
    for i, price in prices.items():
        ex(db, "INSERT INTO orders (id, price) VALUES (?, ?)", i, price)
    ex(db, "UPDATE orders SET price_cents = NULL")  # as before the triggers: not backfilled
    install(db, CENTS)
    set_stage(db, CENTS, Stage.DUALWRITE)
    result = Backfill(db, CENTS, BackfillOptions(initial_batch_size=7, min_batch_size=2)).run()
    assert result.finished and result.rows_written == len(prices)
    got = rows(db, "orders", "price", "price_cents")
    for i, price in prices.items():
        assert got[i] == (pytest.approx(price), round(price * 100)), i  # price kept as written
    # a new-side write that differs from f(old) is still mirrored back
    ex(db, "UPDATE orders SET price_cents = 4242 WHERE id = 1")
    assert rows(db, "orders", "price")[1] == (pytest.approx(42.42),)
