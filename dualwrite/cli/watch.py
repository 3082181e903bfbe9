"""Observation commands: watch (a live terminal view) and metrics serve (Prometheus)."""

from __future__ import annotations

import json
import time

import click
from rich.live import Live

from dualwrite.cli.app import Ctx, console, json_option, main, reporting
from dualwrite.exporter import serve_metrics
from dualwrite.watch import Watcher, render

__all__: list[str] = []


@main.command()
@click.argument("key", required=False)
@click.option("--once", is_flag=True, help="Render one snapshot and exit.")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Seconds between refreshes.")
@json_option
@click.pass_obj
def watch(obj: Ctx, key: str | None, once: bool, interval: float, as_json: bool) -> None:
    """Live view of every migration (or KEY): stage, backfill progress, rate and ETA,
    verify, fleet, lock waits, replication. --json prints one snapshot."""
    with reporting(as_json):
        watcher = Watcher(obj.migrator().db)
        if as_json:
            click.echo(json.dumps([v.to_dict() for v in watcher.snapshot(key)], default=str))
            return
        if once:
            console().print(render(watcher.snapshot(key)))
            return
        with Live(render(watcher.snapshot(key)), console=console(),
                  refresh_per_second=4) as live:
            try:
                while True:
                    time.sleep(interval)
                    live.update(render(watcher.snapshot(key)))
            except KeyboardInterrupt:
                pass


@main.group()
def metrics() -> None:
    """Prometheus metrics of the state tables."""


@metrics.command("serve")
@click.option("--port", default=9464, show_default=True, type=click.IntRange(0, 65535))
@click.option("--addr", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface).")
@click.pass_obj
def metrics_serve(obj: Ctx, port: int, addr: str) -> None:
    """Serve /metrics: stage, backfill progress, verify results, fleet size, lock waits and
    replication lag per migration, read from the state tables at each scrape."""
    with reporting(False):
        server, thread = serve_metrics(obj.migrator().db, port, addr)
        click.echo(f"serving http://{addr}:{server.server_port}/metrics", err=True)
        try:
            while thread.is_alive():
                thread.join(1.0)
        except KeyboardInterrupt:
            server.shutdown()
