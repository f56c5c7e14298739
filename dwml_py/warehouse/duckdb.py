"""DuckDB, the embedded default (the same file dbt-duckdb writes)."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.errors import WarehouseError
from dwml_py.warehouse.base import Capabilities, Warehouse, refused_hint

_registration_ids = itertools.count()
# Every DuckDB file connection this process holds, so that `release_connections` can close them
# all before dbt runs in-process (see there).
_OPEN: "weakref.WeakSet[DuckDBWarehouse]" = weakref.WeakSet()
_OPEN_LOCK = threading.Lock()


def _lock_hint(path: str) -> str:
    return (f"another process holds the DuckDB file {path!r} for writing (a dbt run, another dwml "
            "command, a notebook). DuckDB allows one writing process: wait for it to finish or close it.")


def _lock_wait_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("DWML_LOCK_WAIT_SECONDS", "15")))
    except ValueError:
        return 15.0


def _connect_waiting_for_lock(path: str, read_only: bool):
    """duckdb.connect, retrying for a while when another process holds the file's write lock.

    DuckDB allows one writing process per file; two scheduled jobs (two `dwml predict` runs, a
    `dbt run` and `dwml monitor`) that overlap by a few seconds should queue, not fail.
    DWML_LOCK_WAIT_SECONDS bounds the wait (0 fails at once)."""
    deadline = time.monotonic() + _lock_wait_seconds()
    delay = 0.05
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"
    capabilities = Capabilities(asof_join=True, approx_count_distinct=True, arrow_native=True)

    def __init__(self, path: str = ":memory:", read_only: bool = False, settings: dict | None = None,
                 extensions: list[str] | None = None):
        self.path = path if path == ":memory:" else str(Path(path).expanduser())
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.read_only = read_only
        self._settings = dict(settings or {})
        self._extensions = list(extensions or [])
        self._busy = 0  # open transactions and Arrow registrations: state a reopened connection would lose
        self._closed = False
        self._con = self._open()
        if self.path != ":memory:":
            with _OPEN_LOCK:
                _OPEN.add(self)

    def _open(self):
        try:
            con = _connect_waiting_for_lock(self.path, self.read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                holder = re.search(r"PID \d+", str(exc))
                by = f" by {holder.group(0)}" if holder else ""
                raise WarehouseError(f"Cannot open {self.path!r}: it is locked{by} (waited {_lock_wait_seconds():g} s).",
                                     hint=_lock_hint(self.path)) from exc
            raise WarehouseError(f"Cannot open the DuckDB file {self.path!r}: {exc}",
                                 hint="check the `path:` of the target in profiles.yml.") from exc
        except duckdb.Error as exc:
            raise WarehouseError(f"Cannot open the DuckDB file {self.path!r}: {exc}",
                                 hint="check the `path:` of the target in profiles.yml; a file written by a "
                                 "newer DuckDB cannot be read by an older one.") from exc
        statements = [f"LOAD {sqlmod.render(sqlmod.ident(extension), 'duckdb')}" for extension in self._extensions]
        statements += [f"SET {sqlmod.render(sqlmod.ident(key), 'duckdb')} = "
                       f"{sqlmod.render(sqlmod.literal(value), 'duckdb')}" for key, value in self._settings.items()]
        for statement in statements:
            try:
                con.sql(statement)
            except duckdb.Error as exc:
                con.close()
                raise WarehouseError(f"DuckDB refused {statement!r} from the target's settings: {exc}",
                                     hint="check `extensions:` and `settings:` of the target in profiles.yml.") from exc
        return con

    @property
    def con(self):
        """The DuckDB connection, reopened (same file, mode and settings) after `release()`."""
        if self._con is None:
            if self._closed:
                raise WarehouseError(f"The connection to {self.path!r} was closed and is used again.",
                                     hint="this is a dwml bug: please report it with the command you ran.")
            self._con = self._open()
        return self._con

    def release(self) -> None:
        """Close the connection until the next statement reopens it. dbt-duckdb, run in this
        process, cannot open a file this process holds with other settings (a read-only
        connection, other extensions), and holds the file while it runs."""
        if self._con is None:
            return
        if self._busy:
            raise RuntimeError(f"dbt was started while dwml held a transaction or an Arrow registration on "
                               f"{self.path!r}; this is a dwml bug.")
        with contextlib.suppress(Exception):
            self._con.close()
        self._con = None

    @classmethod
    def from_settings(cls, settings: dict) -> "DuckDBWarehouse":
        return cls(path=str(settings.get("path", ":memory:")), settings=settings.get("settings"),
                   extensions=settings.get("extensions"))

    def _run(self, sql: str, *, what: str = "statement"):
        try:
            return self.con.sql(sql)
        except duckdb.Error as exc:
            missing = isinstance(exc, duckdb.CatalogException) and "does not exist" in str(exc)
            raise WarehouseError(f"DuckDB refused a {what}: {exc}\nSQL: {sql[:500]}",
                                 hint=refused_hint(missing)) from exc

    def execute(self, statement) -> None:
        self._run(self.render(statement))

    def fetch_arrow(self, query) -> pa.Table:
        relation = self._run(self.render(query), what="query")
        return relation.to_arrow_table() if relation is not None else pa.table({})

    def fetch_batches(self, query, batch_size: int = 100_000) -> Iterator[pa.RecordBatch]:
        relation = self._run(self.render(query), what="query")
        if relation is None:
            return iter(())
        reader = relation.to_arrow_reader(batch_size)
        return iter(reader)

    @contextlib.contextmanager
    def registered(self, data: pa.Table):
        """Expose an Arrow table to SQL under a unique name for the duration of the block."""
        name = f"__dwml_arrow_{next(_registration_ids)}"
        self.con.register(name, data)
        self._busy += 1
        try:
            yield name
        finally:
            self._busy -= 1
            self.con.unregister(name)

    def write_arrow(self, data: pa.Table, schema: str, name: str, mode: str = "append") -> int:
        if mode not in {"append", "replace"}:
            raise ValueError(f"mode must be 'append' or 'replace', got {mode!r}")
        target = sqlmod.render(sqlmod.table(schema, name), "duckdb")
        self.create_schema(schema)
        with self.registered(data) as source:
            if mode == "replace" or not self.table_exists(schema, name):
                self._run(f'CREATE OR REPLACE TABLE {target} AS SELECT * FROM "{source}"')
            else:
                self._run(f'INSERT INTO {target} BY NAME SELECT * FROM "{source}"')
        return data.num_rows

    def schema_columns(self, schema: str) -> dict[str, list[tuple[str, str]]]:
        """(column, type) lists of every table and view of a schema, in one query: listing the
        columns of a project's relations one by one costs a query each."""
        query = (
            exp.select("table_name", "column_name", "data_type")
            .from_("information_schema.columns")
            .where(exp.column("table_schema").eq(sqlmod.literal(schema)))
            .order_by("table_name", "ordinal_position")
        )
        out: dict[str, list[tuple[str, str]]] = {}
        for r in self.fetch_rows(query):
            out.setdefault(r["table_name"], []).append((r["column_name"], r["data_type"]))
        return out

    def columns(self, schema: str, name: str) -> list[tuple[str, str]]:
        query = (
            exp.select("column_name", "data_type")
            .from_("information_schema.columns")
            .where(exp.column("table_schema").eq(sqlmod.literal(schema)))
            .where(exp.column("table_name").eq(sqlmod.literal(name)))
            .order_by("ordinal_position")
        )
        return [(r["column_name"], r["data_type"]) for r in self.fetch_rows(query)]

    @contextlib.contextmanager
    def transaction(self):
        self.con.begin()
        self._busy += 1
        try:
            yield self
        except BaseException:
            self._busy -= 1
            self.con.rollback()
            raise
        else:
            self._busy -= 1
            self.con.commit()

    def close(self) -> None:
        self._closed = True
        if self._con is not None:
            with contextlib.suppress(Exception):
                self._con.close()
            self._con = None
        with _OPEN_LOCK:
            _OPEN.discard(self)


def release_connections() -> None:
    """Close every DuckDB file connection of this process until it is used again: called by the
    dbt runner before dbt runs in-process (dwml_py.dbt_runner.run_dbt), the one place that
    keeps dwml's connections and dbt-duckdb's from meeting."""
    with _OPEN_LOCK:
        warehouses = list(_OPEN)
    for warehouse in warehouses:
        warehouse.release()
