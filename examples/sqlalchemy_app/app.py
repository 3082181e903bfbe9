"""A tiny shop: a JSON API over an ``orders`` table, on SQLAlchemy 2.x and stdlib ``wsgiref``.

::

    POST  /orders        {"customer": "ann", "amount": "12.34"}  -> 201 the order
    GET   /orders/<id>                                           -> 200 the order
    PATCH /orders/<id>   {"amount": "56.78"}                     -> 200 the order

The API speaks dollars as text (``"12.34"``) and never changes. The storage does:
``orders.amount`` (text) becomes ``orders.amount_cents`` (integer cents) through the
dualwrite migration in ``dualwrite.toml``, over three releases of the code:

* **release 1** (before): maps ``amount`` only.
* **release 2** (during): maps ``amount_cents`` too and installs the dualwrite adapter on its
  sessionmaker. The code is unchanged: it still reads and writes ``Order.amount``; the
  adapter mirrors every write to ``amount_cents`` and serves each read from the column the
  migration's stage says.
* **release 3** (after ``complete``): the code uses ``amount_cents``; ``amount`` is no longer
  mapped, so ``dualwrite contract`` can drop it.

``ShopApp.deploy()`` swaps releases like a rolling deploy: new requests go to the new
release at once, the old one finishes the requests it has, then stops.

Serve one release by hand (``python app.py --help``); ``run.py`` drives the whole story.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import dualwrite_sqlalchemy
import money
from sqlalchemy import BigInteger, Engine, String, create_engine, insert, inspect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from dualwrite.config import load_specs
from dualwrite.spec import MigrationSpec

__all__ = ["SPEC_FILE", "STAGE_CACHE_SECONDS", "Release", "Release1", "Release2", "Release3",
           "ShopApp", "create_orders_table", "dualwrite_context", "engine_for",
           "load_migrations", "orders_columns", "serve"]

HERE = Path(__file__).resolve().parent
#: The migration, read by the application and by the ``dualwrite`` CLI alike.
SPEC_FILE = HERE / "dualwrite.toml"
#: How long the adapter reuses a stage it read (the default): an advance reaches every
#: request of an instance within about this long after the instance first reports it.
STAGE_CACHE_SECONDS = 1.0


def load_migrations() -> list[MigrationSpec]:
    """The specs of ``dualwrite.toml`` (its Python transforms are imported from ``money``)."""
    return load_specs([str(SPEC_FILE)])


# -- models: one declarative base per release, as each release ships its own code ----------

class _Orders:
    """The columns the migration does not touch."""

    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-1)
    customer: Mapped[str] = mapped_column(String(100), sort_order=-1)


class _AmountText(_Orders):
    amount: Mapped[str | None] = mapped_column(String(20))


class Release1Base(DeclarativeBase):
    pass


class OrderV1(_AmountText, Release1Base):
    """Release 1's order: ``amount`` holds dollars as text."""


class Release2Base(DeclarativeBase):
    pass


class OrderV2(_AmountText, Release2Base):
    """Release 2's order: both columns of the migration (the new one nullable)."""

    amount_cents: Mapped[int | None] = mapped_column(BigInteger)


class Release3Base(DeclarativeBase):
    pass


class OrderV3(_Orders, Release3Base):
    """Release 3's order: ``amount_cents`` only."""

    amount_cents: Mapped[int] = mapped_column(BigInteger)


# -- database -----------------------------------------------------------------------------

_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
            "mysql": "mysql+pymysql", "mariadb": "mysql+pymysql"}


def engine_for(database_url: str) -> Engine:
    """A SQLAlchemy engine for a dualwrite URL (``postgresql://``, ``mysql://``,
    ``sqlite:///file.db``; an explicit ``+driver`` is kept)."""
    scheme, rest = database_url.split("://", 1)
    url = database_url if "+" in scheme else f"{_DRIVERS.get(scheme, scheme)}://{rest}"
    if scheme.startswith("sqlite"):
        # several threads and the dualwrite CLI share the file: wait for its write lock
        return create_engine(url, connect_args={"timeout": 30})
    return create_engine(url, pool_pre_ping=True)


def create_orders_table(engine: Engine, rows: int, seed: int = 7) -> dict[int, str]:
    """Create ``orders`` as release 1 knows it, with ``rows`` orders; their amounts by id."""
    Release1Base.metadata.create_all(engine)
    values = [{"customer": f"customer-{i % 50}",
               "amount": f"{(i * 7919 + seed) % 100_000}.{(i * 31) % 100:02d}"}
              for i in range(rows)]
    with engine.begin() as conn:
        if values:
            conn.execute(insert(OrderV1), values)
        return {int(r.id): str(r.amount) for r in
                conn.execute(OrderV1.__table__.select())}


def orders_columns(engine: Engine) -> list[str]:
    """The columns ``orders`` has in the database now."""
    return [str(c["name"]) for c in inspect(engine).get_columns("orders")]


# -- releases -----------------------------------------------------------------------------

Order = dict[str, Any]
T = TypeVar("T")
#: Deadlock, lock wait timeout (MySQL/MariaDB), serialization failure, deadlock (PostgreSQL).
_RETRYABLE = {1205, 1213, "40001", "40P01"}


def _retryable(exc: DBAPIError) -> bool:
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or (orig.args[0] if orig and orig.args else None)
    return code in _RETRYABLE or "database is locked" in str(orig)


class Release:
    """One deployed version of the shop's code, with its own engine (a new pod)."""

    name = "release"

    def __init__(self, database_url: str) -> None:
        self.engine = engine_for(database_url)
        self.Session = sessionmaker(self.engine)
        self.retries = 0
        self._in_flight = 0
        self._idle = threading.Condition()

    def unit_of_work(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a new session, retrying it after a deadlock or a lock timeout, as
        any handler on a busy MySQL or PostgreSQL table should."""
        for attempt in (1, 2, 3):
            try:
                with self.Session() as session:
                    return work(session)
            except DBAPIError as exc:
                if attempt == 3 or not _retryable(exc):
                    raise
                with self._idle:
                    self.retries += 1
                time.sleep(0.02 * attempt)
        raise AssertionError("unreachable")

    def create(self, customer: str, amount: str) -> Order:
        raise NotImplementedError

    def get(self, order_id: int) -> Order | None:
        raise NotImplementedError

    def update(self, order_id: int, amount: str) -> Order | None:
        raise NotImplementedError

    # requests in flight, for a graceful stop
    def enter(self) -> None:
        with self._idle:
            self._in_flight += 1

    def leave(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def stop(self, timeout: float = 30.0) -> None:
        """Let the requests in flight finish, then close."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout)
        self.close()

    def close(self) -> None:
        self.engine.dispose()


def _order(order_id: int, customer: str, amount: str | None) -> Order:
    return {"id": order_id, "customer": customer, "amount": amount}


class _TextAmountRelease(Release):
    """Releases 1 and 2 share this code: it reads and writes ``amount``."""

    model: type[_AmountText]

    def create(self, customer: str, amount: str) -> Order:
        def work(session: Session) -> Order:
            order = self.model()
            order.customer, order.amount = customer, amount
            session.add(order)
            session.commit()
            return _order(order.id, order.customer, order.amount)
        return self.unit_of_work(work)

    def get(self, order_id: int) -> Order | None:
        def work(session: Session) -> Order | None:
            order = session.get(self.model, order_id)
            return None if order is None else _order(order.id, order.customer, order.amount)
        return self.unit_of_work(work)

    def update(self, order_id: int, amount: str) -> Order | None:
        def work(session: Session) -> Order | None:
            order = session.get(self.model, order_id)
            if order is None:
                return None
            order.amount = amount
            session.commit()
            return _order(order.id, order.customer, order.amount)
        return self.unit_of_work(work)


class Release1(_TextAmountRelease):
    name = "release 1"
    model = OrderV1


class Release2(_TextAmountRelease):
    """Release 1's code on a model that maps ``amount_cents`` too, plus the adapter."""

    name = "release 2"
    model = OrderV2

    def __init__(self, database_url: str,
                 migrations: Sequence[MigrationSpec] | None = None) -> None:
        super().__init__(database_url)
        # The one line that adopts dualwrite: mirror writes, route reads, compare, report
        # to the fleet table. bases= because other releases' models map "orders" too.
        self.dualwrite = dualwrite_sqlalchemy.install(
            self.Session, migrations if migrations is not None else load_migrations(),
            bases=[Release2Base], cache_ttl=STAGE_CACHE_SECONDS)

    def close(self) -> None:
        self.dualwrite.uninstall()
        super().close()


class Release3(Release):
    """The code moved to ``amount_cents``; the API still speaks dollars."""

    name = "release 3"

    def create(self, customer: str, amount: str) -> Order:
        def work(session: Session) -> Order:
            order = OrderV3(customer=customer, amount_cents=money.to_cents(amount))
            session.add(order)
            session.commit()
            return _order(order.id, order.customer, money.from_cents(order.amount_cents))
        return self.unit_of_work(work)

    def get(self, order_id: int) -> Order | None:
        def work(session: Session) -> Order | None:
            order = session.get(OrderV3, order_id)
            return None if order is None else _order(order.id, order.customer,
                                                      money.from_cents(order.amount_cents))
        return self.unit_of_work(work)

    def update(self, order_id: int, amount: str) -> Order | None:
        def work(session: Session) -> Order | None:
            order = session.get(OrderV3, order_id)
            if order is None:
                return None
            order.amount_cents = money.to_cents(amount)
            session.commit()
            return _order(order.id, order.customer, money.from_cents(order.amount_cents))
        return self.unit_of_work(work)


RELEASES: dict[str, type[Release]] = {"1": Release1, "2": Release2, "3": Release3}


# -- web ----------------------------------------------------------------------------------

_ORDER_PATH = re.compile(r"^/orders/(\d+)$")
Response = tuple[str, Any]


class ShopApp:
    """The WSGI application, serving whichever release is deployed."""

    def __init__(self, release: Release) -> None:
        self._release = release
        self._lock = threading.Lock()
        self.releases = [release]

    @property
    def release(self) -> Release:
        return self._release

    def deploy(self, release: Release) -> Release:
        """Serve ``release`` from now on; stop the previous one once its requests are done
        (returned, stopped)."""
        with self._lock:
            previous, self._release = self._release, release
            self.releases.append(release)
        previous.stop()
        return previous

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        with self._lock:
            release = self._release
            release.enter()
        try:
            status, body = self._route(release, environ)
        except Exception as exc:  # noqa: BLE001 -- one request fails, the server goes on
            status, body = "500 Internal Server Error", {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            release.leave()
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(data)))])
        return [data]

    def _route(self, release: Release, environ: WSGIEnvironment) -> Response:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        match = _ORDER_PATH.match(path)
        if path == "/orders" and method == "POST":
            body = _json_body(environ)
            customer, amount = body.get("customer"), body.get("amount")
            if not isinstance(customer, str) or not customer:
                return "400 Bad Request", {"error": "customer: a non-empty string"}
            if not isinstance(amount, str) or not money.is_amount(amount):
                return "400 Bad Request", {"error": "amount: dollars as text, e.g. \"12.34\""}
            return "201 Created", release.create(customer, amount)
        if match and method == "GET":
            found = release.get(int(match.group(1)))
            return ("200 OK", found) if found else ("404 Not Found", {"error": "no such order"})
        if match and method == "PATCH":
            amount = _json_body(environ).get("amount")
            if not isinstance(amount, str) or not money.is_amount(amount):
                return "400 Bad Request", {"error": "amount: dollars as text, e.g. \"12.34\""}
            found = release.update(int(match.group(1)), amount)
            return ("200 OK", found) if found else ("404 Not Found", {"error": "no such order"})
        if match or path == "/orders":
            return "405 Method Not Allowed", {"error": f"{method} not allowed on {path}"}
        return "404 Not Found", {"error": f"no route {path}"}


def _json_body(environ: WSGIEnvironment) -> dict[str, Any]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data = json.loads(environ["wsgi.input"].read(length) or b"{}")
    return data if isinstance(data, dict) else {}


def dualwrite_context(app: WSGIApplication) -> WSGIApplication:
    """WSGI middleware: the request's customer (``X-Customer``) is the OpenFeature
    targeting key, so a flag provider can roll a stage out to a share of customers."""
    def middleware(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        with dualwrite_sqlalchemy.evaluation_context(environ.get("HTTP_X_CUSTOMER")):
            return app(environ, start_response)  # ShopApp answers with a ready list
    return middleware


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(app: WSGIApplication, host: str = "127.0.0.1", port: int = 0, *,
          quiet: bool = True) -> WSGIServer:
    """A threaded HTTP server for ``app`` (call ``serve_forever()`` on it); port 0 picks a
    free port (``server.server_port``)."""
    return make_server(host, port, app, server_class=_ThreadingServer,
                       handler_class=_QuietHandler if quiet else WSGIRequestHandler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve one release of the shop.")
    parser.add_argument("--database-url", default=os.environ.get("DUALWRITE_DATABASE_URL"),
                        required="DUALWRITE_DATABASE_URL" not in os.environ,
                        help="postgresql://..., mysql://... or sqlite:///shop.db "
                             "(env DUALWRITE_DATABASE_URL)")
    parser.add_argument("--release", choices=sorted(RELEASES), default="1",
                        help="1: amount only; 2: both columns and the adapter; "
                             "3: amount_cents only (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--seed", type=int, metavar="ROWS",
                        help="create the orders table with ROWS orders if it does not exist")
    args = parser.parse_args(argv)
    if args.seed is not None:
        engine = engine_for(args.database_url)
        if not inspect(engine).has_table("orders"):
            create_orders_table(engine, args.seed)
        engine.dispose()
    release = RELEASES[args.release](args.database_url)
    server = serve(dualwrite_context(ShopApp(release)), port=args.port, quiet=False)
    print(f"{release.name} serving http://127.0.0.1:{server.server_port}/orders", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        release.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
