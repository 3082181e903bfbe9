"""``dualwrite demo`` tells the whole story on every backend, and can be run twice."""

from __future__ import annotations

import io

from rich.console import Console

from dualwrite.db import Database
from dualwrite.demo import run_demo
from dualwrite.stages import Stage
from dualwrite.state import StateStore


def test_the_demo_story_runs_clean_and_reruns(db: Database, db_url: str, tmp_path: object) -> None:
    for _ in range(2):  # the second run starts afresh on the same database
        out = io.StringIO()
        path = str(tmp_path) + "/demo.db"  # used on SQLite only
        summary = run_demo(Console(file=out, width=120), path=path,
                           database_url=None if db.dialect.name == "sqlite" else db_url,
                           rows=2000, pace=0.001)
        text = out.getvalue()
        assert summary.ok, (summary.traffic.errors[:3], summary.traffic.stale_reads[:3])
        assert summary.mismatches_caught == 1 and summary.final_mismatches == 0
        assert summary.rows_verified > 2000
        assert summary.traffic.writes and summary.traffic.reads and summary.traffic.inserts
        assert {"dualwrite", "shadow", "live", "rampdown", "complete"} <= \
            set(summary.traffic.by_stage)
        assert "ok rampdown -> complete" in text
    if db.dialect.name != "sqlite":
        assert StateStore(db).get("dualwrite-demo").stage is Stage.COMPLETE
        assert len(StateStore(db).history("dualwrite-demo")) == 8
