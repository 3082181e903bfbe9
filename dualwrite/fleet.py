"""Fleet registration: every process running an adapter reports what it observes.

A :class:`FleetMember` heartbeats into the fleet table from a daemon thread (cheap: one
upsert per migration every ``interval`` seconds). Failures are logged, never raised: the
application keeps serving; its entry just ages out, which makes gates wait for it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable

from dualwrite._version import __version__
from dualwrite.db import Database
from dualwrite.stages import Stage
from dualwrite.state import StateStore

__all__ = ["FleetMember"]

log = logging.getLogger("dualwrite.fleet")

DEFAULT_INTERVAL = 10.0


class FleetMember:
    """This process, as a member of the fleet for some migrations."""

    def __init__(self, db: Database, *, instance_id: str | None = None,
                 interval: float = DEFAULT_INTERVAL) -> None:
        self.store = StateStore(db)
        self.instance_id = instance_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.interval = interval
        self._observed: dict[str, Stage] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0

    def observe(self, key: str, stage: Stage) -> None:
        """Record the stage this process serves for ``key`` (reported at the next beat;
        a change of stage is reported at once)."""
        with self._lock:
            changed = self._observed.get(key) is not stage
            self._observed[key] = stage
        if changed and self._thread is not None:
            self.beat()

    def observed(self) -> dict[str, Stage]:
        """What this process reports, per migration key."""
        with self._lock:
            return dict(self._observed)

    def beat(self) -> bool:
        """Report now. True on success; a failure is logged and counted."""
        stages: Iterable[tuple[str, Stage]] = self.observed().items()
        try:
            self.store.heartbeat(self.instance_id, socket.gethostname(), os.getpid(),
                                 __version__, stages)
            return True
        except Exception as exc:  # noqa: BLE001 -- never break the application
            self.failures += 1
            log.warning("dualwrite: fleet heartbeat failed (%s)", exc)
            return False

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def start(self) -> None:
        """Beat once, then every ``interval`` seconds in a daemon thread."""
        if self._thread is not None:
            return
        self.beat()
        self._thread = threading.Thread(target=self._run, name="dualwrite-fleet", daemon=True)
        self._thread.start()

    def stop(self, *, deregister: bool = True) -> None:
        """Stop beating; remove this instance from the fleet table unless told not to."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if deregister:
            try:
                self.store.deregister(self.instance_id)
            except Exception as exc:  # noqa: BLE001
                log.warning("dualwrite: fleet deregistration failed (%s)", exc)
