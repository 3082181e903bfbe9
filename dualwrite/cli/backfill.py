"""Backfill and verify commands: ``dualwrite backfill [run] KEY``, ``dualwrite backfill
status KEY``, ``dualwrite verify KEY``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from dualwrite.backfill import (
    Backfill,
    BackfillOptions,
    BackfillProgress,
    Verifier,
    backfill_status,
)
from dualwrite.backfill_control import BackfillControl, ControlResult
from dualwrite.cli.app import Ctx, console, json_option, main, reporting
from dualwrite.health import HealthMonitor, HealthThresholds

__all__: list[str] = []


class _DefaultRun(click.Group):
    """``backfill KEY ...`` means ``backfill run KEY ...``; ``backfill pause KEY`` and the
    other subcommands are dispatched as usual (a key named like a subcommand needs
    ``backfill run``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@main.group(cls=_DefaultRun)
def backfill() -> None:
    """Copy new = f(old) for every row (or old = g(new) with --reverse), in batches.

    \b
    dualwrite backfill KEY [options]     run (or resume) the backfill
    dualwrite backfill status KEY        where it stands; dead workers shown as dead
    dualwrite backfill pause|resume|cancel KEY
    dualwrite backfill set KEY --batch-size N --sleep S --max-rows-per-second R
    """


@contextmanager
def _progress_display(as_json: bool) -> Iterator[Callable[[BackfillProgress], None] | None]:
    """A rich progress bar with rows/s and ETA on a terminal, plain lines otherwise."""
    if as_json:
        yield None
        return
    con = console()
    if con.is_terminal:
        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                       MofNCompleteColumn(), TaskProgressColumn(),
                       TextColumn("{task.fields[rate]} rows/s"), TimeRemainingColumn(),
                       TextColumn("{task.fields[note]}"), console=con)
        task = bar.add_task("backfill", total=None, rate="-", note="")
        started = time.monotonic()
        first: list[int] = []

        def show(ev: BackfillProgress) -> None:
            if not first:
                first.append(ev.rows_done)
            rate = (ev.rows_done - first[0]) / max(time.monotonic() - started, 1e-6)
            note = f"held by {ev.held_by.signal}" if ev.held_by else f"batch {ev.batch_size}"
            bar.update(task, completed=ev.rows_done, total=max(ev.rows_total, ev.rows_done),
                       rate=f"{rate:,.0f}", note=note, description=f"{ev.key} {ev.direction}")
        with bar:
            yield show
        return
    last = [0.0]
    t0 = time.monotonic()

    def line(ev: BackfillProgress) -> None:
        now = time.monotonic()
        if now - last[0] < 2.0 and not ev.held_by:
            return
        last[0] = now
        rate = ev.rows_done / max(now - t0, 1e-6)
        eta = (ev.rows_total - ev.rows_done) / rate if rate and ev.rows_total else None
        eta_s = f"{eta:.0f}s" if eta is not None else "?"
        held = f" held_by={ev.held_by.signal} value={ev.held_by.value}" if ev.held_by else ""
        click.echo(f"backfill {ev.key} {ev.direction}: {ev.rows_done}/{ev.rows_total} rows, "
                   f"written={ev.rows_written} batch={ev.batch_size} rate={rate:.0f}/s "
                   f"eta={eta_s}{held}", err=True)
    yield line


@backfill.command("run")
@click.argument("key")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Worker threads; more processes or pods may join through leases.")
@click.option("--parts", type=click.IntRange(1, 100000),
              help="Split the key range into this many parts (default: --workers).")
@click.option("--batch-size", type=click.IntRange(1), help="Fixed batch size (default: adaptive).")
@click.option("--target-batch-seconds", default=0.1, show_default=True, type=float,
              help="What the adaptive batch size aims for.")
@click.option("--sleep", type=click.FloatRange(0), help="Seconds to sleep between batches.")
@click.option("--max-rows-per-second", type=click.FloatRange(0, min_open=True),
              help="Cap on rows walked per second (all workers of this process).")
@click.option("--lock-timeout", default=2.0, show_default=True, type=float,
              help="Seconds a batch waits for a row lock before it is retried.")
@click.option("--statement-timeout", default=60.0, show_default=True, type=float,
              help="Seconds a batch statement may run before it is retried smaller.")
@click.option("--max-replica-lag", default=10.0, show_default=True, type=float,
              help="Hold while a replica lags more than this many seconds.")
@click.option("--replica", "replicas", multiple=True, metavar="URL",
              help="A replica whose replication lag is watched (repeatable).")
@click.option("--max-load", type=click.IntRange(1), default=50, show_default=True,
              help="MySQL/MariaDB: hold while Threads_running is above this.")
@click.option("--critical-load", type=click.IntRange(1), default=500, show_default=True,
              help="MySQL/MariaDB: stop cleanly when Threads_running reaches this.")
@click.option("--max-wal-mb-per-second", type=click.FloatRange(0, min_open=True),
              default=256.0, show_default=True, help="PostgreSQL: hold above this WAL rate.")
@click.option("--max-lock-waiters", type=click.IntRange(0), default=2, show_default=True,
              help="PostgreSQL: hold after a batch that made more sessions wait.")
@click.option("--vacuum-hold/--no-vacuum-hold", default=True, show_default=True,
              help="PostgreSQL: hold while (auto)vacuum works on the table.")
@click.option("--reverse", is_flag=True, help="old = g(new): before a rollback from complete.")
@click.option("--restart", is_flag=True, help="Forget the checkpoint and start over.")
@click.option("--on-error", type=click.Choice(["stop", "skip"]), default="stop",
              show_default=True, help="When the transform fails on some rows.")
@click.option("--python", "use_python", is_flag=True,
              help="Use the spec's Python transform even if it has a SQL one.")
@click.option("--dry-run", is_flag=True, help="Print the plan and an estimate; change nothing.")
@json_option
@click.pass_obj
def run_cmd(obj: Ctx, key: str, workers: int, parts: int | None, batch_size: int | None,
            target_batch_seconds: float, sleep: float | None,
            max_rows_per_second: float | None, lock_timeout: float, statement_timeout: float,
            max_replica_lag: float, replicas: tuple[str, ...], max_load: int,
            critical_load: int, max_wal_mb_per_second: float, max_lock_waiters: int,
            vacuum_hold: bool, reverse: bool, restart: bool, on_error: str,
            use_python: bool, dry_run: bool, as_json: bool) -> None:
    """Backfill KEY: resumable, throttled, parallel; safe under live traffic."""
    with reporting(as_json):
        m = obj.migrator()
        opts = BackfillOptions(
            direction="reverse" if reverse else "forward", workers=workers, parts=parts,
            batch_size=batch_size, target_batch_seconds=target_batch_seconds, sleep=sleep,
            max_rows_per_second=max_rows_per_second, lock_timeout=lock_timeout,
            statement_timeout=statement_timeout, restart=restart, on_error=on_error,
            use_python=use_python, health=HealthThresholds(
                max_replica_lag=max_replica_lag, replica_urls=replicas,
                max_threads_running=max_load, critical_threads_running=critical_load,
                max_wal_bytes_per_second=max_wal_mb_per_second * 1024 * 1024,
                max_lock_waiters=max_lock_waiters, max_vacuums=1 if vacuum_hold else None))
        if dry_run:
            plan = Backfill(m.db, m.spec(key), opts).plan()
            if as_json:
                click.echo(json.dumps(plan.to_dict(), default=str))
                return
            _print_mapping(f"backfill plan for {key} (dry run: nothing changed)", plan.to_dict())
            return
        with _progress_display(as_json) as show:
            result = Backfill(m.db, m.spec(key), opts, progress=show).run()
        if as_json:
            click.echo(json.dumps(result.to_dict(), default=str))
            return
        verdict = "finished" if result.finished else f"stopped ({result.state})"
        click.echo(f"backfill {key} {result.direction} {verdict}: walked {result.rows_done} "
                   f"rows, wrote {result.rows_written} in {result.batches} batches "
                   f"({result.retries} retries) in {result.seconds:.1f}s")
        if result.rows_failed:
            click.echo(f"  {result.rows_failed} row(s) skipped because the transform failed, "
                       f"keys: {result.failed_keys[:20]}")
        for signal, seconds in result.holds.items():
            click.echo(f"  held by {signal} for {seconds:.1f}s")
        if result.finished:
            click.echo(f"next: dualwrite verify {key}{' --reverse' if result.direction == 'reverse' else ''}")


def _print_mapping(title: str, data: dict[str, Any]) -> None:
    t = Table(title=title, show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    for k, v in data.items():
        t.add_row(k, json.dumps(v, default=str) if isinstance(v, (dict, list)) else str(v))
    console().print(t)


@backfill.command("status")
@click.argument("key")
@click.option("--reverse", is_flag=True, help="The reverse backfill.")
@json_option
@click.pass_obj
def status_cmd(obj: Ctx, key: str, reverse: bool, as_json: bool) -> None:
    """Where KEY's backfill stands: parts, cursors, workers (dead when their lease expired)."""
    with reporting(as_json):
        m = obj.migrator()
        m.state.require()
        st = backfill_status(m.db, key, "reverse" if reverse else "forward")
        if key in m.specs:
            monitor = HealthMonitor(m.db, m.specs[key], HealthThresholds())
            st["signals"] = [r.to_dict() for r in monitor.read(force=True)]
            monitor.close()
        if as_json:
            click.echo(json.dumps(st, default=str))
            return
        if st["run"] is None:
            click.echo(f"no {st['direction']} backfill of {key} has run")
            return
        run = st["run"]
        click.echo(f"backfill {key} {st['direction']}: {run['state']}, {st['rows_done']}/"
                   f"{st['rows_estimate']} rows walked, {st['rows_written']} written, "
                   f"{st['rows_failed']} failed; settings {json.dumps(run['settings'])}")
        click.echo("parts: " + ", ".join(f"{n} {h}" for h, n in st["parts_by_health"].items()))
        t = Table()
        for col in ("part", "health", "rows", "cursor", "worker", "lease until", "held by",
                    "held s"):
            t.add_column(col)
        for p in st["parts"]:
            t.add_row(str(p["part"]), p["health"], str(p["rows_done"]), str(p["cursor"]),
                      p["lease_owner"] or "-", p["lease_expires_at"] or "-",
                      p["hold_signal"] or "-", f"{p['held_seconds']:.1f}")
        console().print(t)
        for r in st.get("signals", []):
            value = "-" if r["value"] is None else f"{r['value']:g}"
            click.echo(f"  signal {r['signal']}: {r['status']} (value {value}, threshold "
                       f"{r['threshold']}){' ' + r['detail'] if r['detail'] else ''}")


def _control(obj: Ctx, key: str, reverse: bool, as_json: bool, reason: str,
             act: Callable[[BackfillControl], ControlResult]) -> None:
    with reporting(as_json):
        m = obj.migrator()
        res = act(BackfillControl(m.db, key, "reverse" if reverse else "forward",
                                  actor=m.actor))
        if as_json:
            click.echo(json.dumps(res.to_dict(), default=str))
            return
        click.echo(f"backfill {key} {res.run.direction}: {res.action} "
                   f"({res.previous_state} -> {res.run.state}); settings "
                   f"{json.dumps(res.run.settings)}; running workers apply it within ~1s")


def _control_command(action: str, doc: str) -> None:
    @backfill.command(action, help=doc)
    @click.argument("key")
    @click.option("--reverse", is_flag=True, help="The reverse backfill.")
    @click.option("--reason", default="", help="Why, recorded in the history.")
    @json_option
    @click.pass_obj
    def command(obj: Ctx, key: str, reverse: bool, reason: str, as_json: bool) -> None:
        _control(obj, key, reverse, as_json, reason,
                 lambda c: getattr(c, action)(reason=reason))


_control_command("pause", "Hold every worker of KEY's backfill after its current batch.")
_control_command("resume", "Let KEY's paused backfill go on.")
_control_command("cancel", "Stop KEY's backfill after the current batches; the checkpoint "
                           "stays (run it again to resume).")


@backfill.command("set")
@click.argument("key")
@click.option("--batch-size", type=click.IntRange(0), help="Fixed batch size (0: adaptive).")
@click.option("--sleep", type=click.FloatRange(0), help="Seconds between batches.")
@click.option("--max-rows-per-second", type=click.FloatRange(0), help="Cap (0: none).")
@click.option("--reverse", is_flag=True, help="The reverse backfill.")
@click.option("--reason", default="", help="Why, recorded in the history.")
@json_option
@click.pass_obj
def set_cmd(obj: Ctx, key: str, batch_size: int | None, sleep: float | None,
            max_rows_per_second: float | None, reverse: bool, reason: str,
            as_json: bool) -> None:
    """Retune KEY's running backfill; workers pick it up within about a second."""
    _control(obj, key, reverse, as_json, reason,
             lambda c: c.set(batch_size=batch_size, sleep=sleep,
                             max_rows_per_second=max_rows_per_second, reason=reason))


@main.command()
@click.argument("key")
@click.option("--fix", is_flag=True, help="Rewrite the rows that differ (guarded, batched).")
@click.option("--reverse", is_flag=True, help="Compare old with g(new) instead.")
@click.option("--chunk-size", default=10000, show_default=True, type=click.IntRange(1))
@click.option("--sample", default=20, show_default=True, type=click.IntRange(0),
              help="How many differing keys to report.")
@click.option("--python", "use_python", is_flag=True,
              help="Compare through the spec's Python transform.")
@json_option
@click.pass_obj
def verify(obj: Ctx, key: str, fix: bool, reverse: bool, chunk_size: int, sample: int,
           use_python: bool, as_json: bool) -> None:
    """Compare new with f(old) over the whole table; the live gate reads the result.

    Exits 0 when clean, 5 when rows differ or are unbackfilled."""
    with reporting(as_json):
        m = obj.migrator()
        rep = Verifier(m.db, m.spec(key), direction="reverse" if reverse else "forward",
                       fix=fix, chunk_size=chunk_size, sample_size=sample,
                       use_python=use_python).run()
        if as_json:
            click.echo(json.dumps(rep.to_dict(), default=str))
        else:
            click.echo(f"verify {key} {rep.direction}: {rep.rows_checked} rows checked, "
                       f"{rep.mismatches} mismatching, {rep.unbackfilled} unbackfilled"
                       f"{f', {rep.fixed} fixed' if fix else ''} in {rep.seconds:.1f}s")
            if rep.sample_keys:
                click.echo(f"  sample keys: {rep.sample_keys}")
            if rep.clean and not reverse:
                click.echo(f"next: dualwrite advance {key} (to live, once at shadow)")
            elif not rep.clean:
                click.echo(f"fix: dualwrite verify {key} --fix"
                           f"{' --reverse' if reverse else ''}")
        if not rep.clean:
            raise SystemExit(5)
