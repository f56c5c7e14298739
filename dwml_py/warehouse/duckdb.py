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
from typing import TYPE_CHECKING

import duckdb

from dwml_py import sql as sqlmod
from dwml_py.errors import WarehouseError
from dwml_py.warehouse.base import Capabilities, InformationSchemaColumns, Warehouse, refused_hint

if TYPE_CHECKING:  # Arrow is imported where data moves (fetch_arrow, write_arrow), not to list rows
    import pyarrow as pa

_registration_ids = itertools.count()
# types whose Python value from fetchall differs from Arrow's to_pylist (see fetch_rows)
_ARROW_VALUED = re.compile(r"HUGEINT|UUID|INTERVAL")
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


class DuckDBWarehouse(InformationSchemaColumns, Warehouse):
    dialect = "duckdb"
    capabilities = Capabilities(asof_join=True, approx_count_distinct=True, arrow_native=True)

    def __init__(self, path: str = ":memory:", read_only: bool = False, settings: dict | None = None,
                 extensions: list[str] | None = None):
        self.path = path if path == ":memory:" else str(Path(path).expanduser())
        read_only = read_only and self.path != ":memory:"  # DuckDB has no read-only in-memory database
        if self.path != ":memory:" and not read_only:
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
            raise WarehouseError(f"Cannot open the DuckDB file {self.path!r}: {str(exc).strip().splitlines()[0]}",
                                 hint="check the `path:` of the target in profiles.yml; a file that exists may be "
                                 "damaged or cut short: restore it from a backup, or rebuild it with `dbt build`.") from exc
        except duckdb.Error as exc:
            raise WarehouseError(f"Cannot open the DuckDB file {self.path!r}: {exc}",
                                 hint="check the `path:` of the target in profiles.yml; a file written by a "
                                 "newer DuckDB cannot be read by an older one.") from exc
        for extension in self._extensions:
            name = extension.get("name") if isinstance(extension, dict) else extension
            self._apply(con, f"LOAD {sqlmod.render(sqlmod.ident(str(name)), 'duckdb')}", f"the extension {name!r}",
                        "extensions")
        for key, value in self._settings.items():
            self._apply(con, f"SET {sqlmod.render(sqlmod.ident(key), 'duckdb')} = "
                        f"{sqlmod.render(sqlmod.setting_literal(value), 'duckdb')}", f"the setting {key!r}", "settings")
        return con

    @staticmethod
    def _apply(con, sql: str, what: str, where: str) -> None:
        """Run a statement built from the profile. Its SQL may hold a secret, so a refusal names
        the setting, never the statement or the value."""
        try:
            con.sql(sql)
        except duckdb.Error as exc:
            con.close()
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WarehouseError(f"DuckDB refused {what} from `{where}:` of the target in profiles.yml: {reason}",
                                 hint=f"check `{where}:` of the target in profiles.yml (`dbt debug` applies the "
                                 "same settings); a setting may need its extension (e.g. httpfs for s3_*) "
                                 "installed and loaded first.") from None

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

    def _fail(self, exc: Exception, sql: str, what: str) -> WarehouseError:
        text = str(exc).strip()
        if isinstance(exc, duckdb.IOException) or text.startswith("IO Error"):
            # not the statement's fault: the file (cut short, damaged) or the disk under it
            first = text.splitlines()[0] if text else type(exc).__name__
            return WarehouseError(f"DuckDB could not read or write the file {self.path!r}: {first}",
                                  hint="the file may be damaged or cut short (a copy that did not finish, a full "
                                  "disk): restore it from a backup, or rebuild it with `dbt build` and rerun "
                                  "dwml's steps.")
        missing = isinstance(exc, duckdb.CatalogException) and "does not exist" in text
        return WarehouseError(f"DuckDB refused a {what}: {text}\nSQL: {sql[:500]}", hint=refused_hint(missing))

    def _run(self, sql: str, *, what: str = "statement"):
        try:
            return self.con.sql(sql)
        except duckdb.Error as exc:
            raise self._fail(exc, sql, what) from exc

    def execute(self, statement) -> None:
        self._run(self.render(statement))

    def fetch_arrow(self, query) -> pa.Table:
        import pyarrow as pa

        sql = self.render(query)
        relation = self._run(sql, what="query")
        if relation is None:
            return pa.table({})
        try:  # a relation runs when it is fetched: reading a damaged file fails here, not in _run
            return relation.to_arrow_table()
        except (duckdb.Error, pa.ArrowException) as exc:
            raise self._fail(exc, sql, "query") from None

    def fetch_rows(self, query) -> list[dict]:
        """Rows as dicts, fetched as Python values without Arrow (whose import costs more than a
        small query); a result with a type that DuckDB and Arrow give as different Python values
        (HUGEINT, UUID, INTERVAL) is fetched through Arrow, so every engine returns the same."""
        sql = self.render(query)
        relation = self._run(sql, what="query")
        if relation is None:
            return []
        try:
            if any(_ARROW_VALUED.search(str(kind)) for kind in relation.types):
                return relation.to_arrow_table().to_pylist()
            names = relation.columns
            return [dict(zip(names, row)) for row in relation.fetchall()]
        except duckdb.Error as exc:
            raise self._fail(exc, sql, "query") from None

    def fetch_batches(self, query, batch_size: int = 100_000) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        sql = self.render(query)
        relation = self._run(sql, what="query")
        if relation is None:
            return iter(())
        try:
            reader = relation.to_arrow_reader(batch_size)
        except (duckdb.Error, pa.ArrowException) as exc:
            raise self._fail(exc, sql, "query") from None
        return self._stream(reader, sql)

    def _stream(self, reader, sql: str) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        error = None
        try:
            for batch in reader:
                yield batch
        except (duckdb.Error, pa.ArrowException) as exc:
            error = self._fail(exc, sql, "query")
        finally:
            # the reader holds DuckDB's database open: let it go before any error travels up
            with contextlib.suppress(Exception):
                reader.close()
            del reader
        if error is not None:
            raise error

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

    @contextlib.contextmanager
    def transaction(self):
        try:
            self.con.begin()
        except duckdb.Error as exc:
            raise self._fail(exc, "BEGIN", "transaction") from None
        self._busy += 1
        try:
            yield self
        except BaseException:
            self._busy -= 1
            with contextlib.suppress(duckdb.Error):
                self.con.rollback()
            raise
        else:
            self._busy -= 1
            try:
                self.con.commit()
            except duckdb.Error as exc:
                raise self._fail(exc, "COMMIT", "commit") from None

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
