"""The simulated application: its ground-truth check passes on a correct migration and
catches the writes that app mode cannot see (a legacy writer once reads go to new)."""

from __future__ import annotations

import time

from dualwrite.db import Database
from dualwrite.simulate import Traffic
from dualwrite.spec import RenameColumn
from dualwrite.stages import Stage
from tests.helpers import q, users_table

SPEC = RenameColumn(key="sim", table="users", old="full_name", new="display_name")


class Served:
    """The stage the simulated fleet serves, flipped by the test."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    def __call__(self) -> Stage:
        return self.stage


def run_for(seconds: float) -> None:
    time.sleep(seconds)


def copy_history(db: Database) -> None:
    """The backfill, done by hand (this test is about the traffic, not the backfill). Every
    differing row, not only NULLs: a write that read ``off`` just before the flip lands
    after it and leaves new behind (in production the fleet gate waits that out)."""
    d = db.dialect
    new, f_old = q(db, "display_name"), d.forward_expr(SPEC, "display_name")
    db.execute((f"UPDATE {q(db, 'users')} SET {new} = {f_old} "
                f"WHERE {new} IS NULL OR {new} <> {f_old}", ()))


def test_app_writers_through_the_stages_read_what_they_wrote(db: Database) -> None:
    users_table(db, 200, with_new=True)
    served = Served(Stage.OFF)
    traffic = Traffic(db, SPEC, served, keys=range(1, 201), app_writers=2, readers=2)
    with traffic:
        for stage in (Stage.DUALWRITE, Stage.SHADOW):
            served.stage = stage
            run_for(0.3)
        copy_history(db)
        for stage in (Stage.LIVE, Stage.SHADOW, Stage.LIVE, Stage.RAMPDOWN, Stage.COMPLETE):
            served.stage = stage
            run_for(0.3)
    report = traffic.report
    assert report.clean, (report.errors[:3], report.stale_reads[:3])
    assert report.writes > 0 and report.inserts > 0 and report.reads > 0
    assert {"dualwrite", "live", "complete"} <= set(report.by_stage)
    # From complete on only the new column is written; it holds every row's value.
    rows = db.fetchall((f"SELECT {q(db, 'display_name')} FROM {q(db, 'users')}", ()))
    assert len(rows) > 200 and all(new is not None for (new,) in rows)


def test_a_legacy_writer_in_app_mode_is_caught_once_reads_go_to_new(db: Database) -> None:
    users_table(db, 50, with_new=True)
    served = Served(Stage.DUALWRITE)
    copy_history(db)
    traffic = Traffic(db, SPEC, served, keys=range(1, 51), app_writers=0, legacy_writers=1,
                      readers=1, insert_every=0)
    with traffic:
        run_for(0.2)
        served.stage = Stage.LIVE
        run_for(0.3)
    assert traffic.report.stale_reads, "a legacy write that app mode cannot mirror went unseen"
    assert not traffic.report.errors
