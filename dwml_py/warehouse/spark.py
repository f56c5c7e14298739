"""Spark through a SparkSession in this process: dbt-spark's `session` method (the `spark` extra).

One session per process. dbt-spark's session method runs every statement on
`SparkSession.builder.enableHiveSupport().config(<server_side_parameters>).getOrCreate()`, so
dbt (run in-process by dwml) and dwml share whichever session came first; both build it from
the target's `server_side_parameters` (warehouse folder, metastore), so the order does not
matter. A local Derby metastore admits one process at a time: run dbt through dwml, or one after
the other. `close()` leaves the session running: dbt and later dwml calls reuse it.

Arrow out: `DataFrame.toArrow()` for results; `fetch_batches` converts each partition to Arrow
on the executors (`mapInArrow`) and streams the partitions one at a time to the driver
(`toLocalIterator`), so the driver holds one partition, never the whole table.
Arrow in: `createDataFrame(arrow)` into a temporary view, then `CREATE TABLE ... AS` or
`INSERT INTO ... (columns) SELECT` by name.

What Spark lacks, and what dwml does instead:
- Transactions. `transaction()` runs its block statement by statement: a failure halfway
  leaves the statements before it applied (e.g. predictions deleted, new ones not yet moved).
  Each statement itself writes all of its files or none (Spark's commit protocol).
- Row-level DELETE and UPDATE on parquet tables (they need Delta/Iceberg). dwml rewrites them:
  the rows to keep (or the updated rows) go to a staging table, then `INSERT OVERWRITE` of the
  table from it, then the staging table is dropped. This rewrites the whole table; if the
  overwrite fails the rows are still in the staging table, whose name the error gives.
- Locks. `lock_table` is a no-op: two processes registering a version of the same model at the
  same moment can both take max(version) + 1. With a local Derby metastore only one process can
  work at a time, so this can only happen against a shared metastore (a cluster).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import sqlglot
from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.errors import ConfigError, WarehouseError
from dwml_py.warehouse.base import Capabilities, Warehouse, refused_hint

_view_ids = itertools.count()

# Settings dwml needs whoever creates the session. dbt-spark forces ANSI mode off on every
# statement; dwml does the same so both see the same semantics (x / 0 is NULL, not an error).
# CREATE TABLE without USING makes parquet tables (Spark 4's default; Spark 3 made Hive text ones).
_RUNTIME_SETTINGS = {"spark.sql.ansi.enabled": "false", "spark.sql.session.timeZone": "UTC",
                     "spark.sql.legacy.createHiveTableByDefault": "false"}
_NOT_FOUND = ("TABLE_OR_VIEW_NOT_FOUND", "SCHEMA_NOT_FOUND", "NO_SUCH_TABLE", "NO_SUCH_DATABASE")


def _pyspark():
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError("PySpark is not installed: the spark target needs it (and dbt-spark's session method).",
                          hint='install the spark extra: pip install "dwml-dbt[spark]" (needs Java 17 or later).') from exc
    return SparkSession


def session(server_side_parameters: dict | None = None):
    """The process's SparkSession, created as dbt-spark's session method would create it."""
    SparkSession = _pyspark()
    params = {str(k): str(v) for k, v in (server_side_parameters or {}).items()}
    # Python workers (fetch_batches converts partitions to Arrow in them) must be this
    # interpreter, which has pyarrow; PySpark's default is whatever `python3` is on PATH.
    chosen_python = os.environ.get("PYSPARK_PYTHON")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    warehouse_dir = params.get("spark.sql.warehouse.dir")
    if warehouse_dir and "://" not in warehouse_dir:
        Path(warehouse_dir).mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in {**params, **_RUNTIME_SETTINGS}.items():
        builder = builder.config(key, value)
    try:
        with _quiet_pandas_check():
            spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: no Java, wrong Java, a locked metastore
        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise WarehouseError(f"Cannot start a Spark session: {message}",
                             hint="Spark 4 needs Java 17 or later (JAVA_HOME or `java` on PATH); a local Derby "
                             "metastore admits one process at a time, so stop other Spark processes using the "
                             "same warehouse folder.") from exc
    for key, value in _RUNTIME_SETTINGS.items():  # a session made before us (a notebook, dbt) gets them too
        spark.conf.set(key, value)
    context = spark.sparkContext
    if chosen_python is None and context.master.startswith("local"):
        # a session dbt made first took `python3`; local workers are processes of this machine
        context.pythonExec = sys.executable
    # PySpark logs every failed statement with its JVM stack trace on stderr; dwml reports the
    # failure itself (message and SQL), and dbt its own.
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return spark


class SparkWarehouse(Warehouse):
    dialect = "spark"
    capabilities = Capabilities(asof_join=False, approx_count_distinct=True, arrow_native=True, transactions=False)

    def __init__(self, spark=None, server_side_parameters: dict | None = None, read_only: bool = False):
        # Spark has no read-only session: a read-only warehouse refuses dwml's own writes instead
        # (execute, write_arrow, create_schema); queries still run.
        self.read_only = read_only
        self.spark = spark if spark is not None else session(server_side_parameters)
        from py4j.protocol import Py4JJavaError  # pyspark is optional: imported here, not at the top
        from pyspark.errors import PySparkException

        self._errors = (PySparkException, Py4JJavaError)

    @classmethod
    def from_settings(cls, settings: dict, read_only: bool = False) -> "SparkWarehouse":
        """From a dbt-spark target; only the `session` method runs Spark in this process."""
        method = str(settings.get("method") or "")
        if method != "session":
            raise ConfigError(
                f"The spark target uses method {method or '(none)'!r}; dwml supports dbt-spark's `session` method.",
                hint="set `method: session` (a SparkSession in this process, local or on a cluster through "
                "spark.master in server_side_parameters); thrift, http and odbc are not supported yet.")
        return cls(server_side_parameters=settings.get("server_side_parameters") or {}, read_only=read_only)

    # -- statements ------------------------------------------------------------------
    def _fail(self, exc: Exception, sql: str, what: str) -> WarehouseError:
        text = str(exc).strip()
        detail = text.split("\n\tat ", 1)[0][:1500]  # no JVM stack trace
        # a failure in a Python worker arrives wrapped in JVM exceptions: name the Python error
        python_errors = re.findall(r"(?m)^([A-Za-z_][\w.]*(?:Error|Exception): .+)$", text)
        if "Traceback (most recent call last)" in text and python_errors:
            detail = f"{detail.splitlines()[0]} ... {python_errors[-1]}"
        return WarehouseError(f"Spark refused a {what}: {detail}\nSQL: {sql[:500]}",
                              hint=refused_hint(any(code in text for code in _NOT_FOUND)))

    def _sql(self, sql: str, what: str = "statement"):
        try:
            return self.spark.sql(sql)
        except self._errors as exc:
            raise self._fail(exc, sql, what) from None

    def _refuse_if_read_only(self, what: str) -> None:
        if self.read_only:
            from dwml_py.errors import ReadOnlyError

            raise ReadOnlyError(f"Refused in read-only mode: {what} on Spark.",
                                hint="this call is read-only (`dwml mcp --read-only`); run it without --read-only "
                                "to change things.")

    def execute(self, statement) -> None:
        self._refuse_if_read_only("a statement that changes the warehouse")
        if isinstance(statement, str) and statement.lstrip()[:6].lower() in {"delete", "update"}:
            statement = sqlglot.parse_one(statement, read="spark")
        if isinstance(statement, exp.Delete):
            return self._rewrite(statement.this, keep=exp.Not(this=_true(statement.args.get("where"))))
        if isinstance(statement, exp.Update):
            return self._rewrite_update(statement)
        self._sql(self.render(statement))

    def fetch_arrow(self, query) -> pa.Table:
        sql = self.render(query)
        frame = self._sql(sql, "query")
        try:
            return _normalise(frame.toArrow())
        except self._errors as exc:
            raise self._fail(exc, sql, "query") from None

    def fetch_batches(self, query, batch_size: int = 100_000) -> Iterator[pa.RecordBatch]:
        sql = self.render(query)
        frame = self._sql(sql, "query")
        return self._batches(frame, sql, batch_size)

    def _batches(self, frame, sql: str, batch_size: int) -> Iterator[pa.RecordBatch]:
        from pyspark.sql.pandas.types import to_arrow_schema

        schema = to_arrow_schema(frame.schema, timezone="UTC")

        def to_ipc(batches):
            # Runs in the Python workers, one partition at a time; self-contained, so that a
            # cluster's workers need pyarrow but not dwml. Each output row is an Arrow IPC stream
            # of up to batch_size rows.
            import pyarrow as pa

            def encode(pending):
                sink = pa.BufferOutputStream()
                table = pa.Table.from_batches(pending)
                with pa.ipc.new_stream(sink, table.schema) as writer:
                    writer.write_table(table)
                return pa.RecordBatch.from_pydict({"ipc": pa.array([sink.getvalue().to_pybytes()], pa.binary())})

            pending, rows = [], 0
            for batch in batches:
                pending.append(batch)
                rows += batch.num_rows
                while rows >= batch_size:  # Spark's own batches may be larger or smaller
                    table = pa.Table.from_batches(pending)
                    yield encode(table.slice(0, batch_size).to_batches())
                    rest = table.slice(batch_size)
                    pending, rows = rest.to_batches(), rest.num_rows
            if rows:
                yield encode(pending)

        try:
            with _quiet_pandas_check():  # no pandas is involved: Arrow in, Arrow out
                encoded = frame.mapInArrow(to_ipc, "ipc binary")
            for row in encoded.toLocalIterator(prefetchPartitions=True):
                table = pa.ipc.open_stream(row[0]).read_all()
                if table.num_rows:
                    yield from _normalise(table.cast(schema)).combine_chunks().to_batches()
        except self._errors as exc:
            raise self._fail(exc, sql, "query") from None

    # -- row-level DELETE and UPDATE, rewritten for tables without them -----------------
    def _rewrite(self, target: exp.Table, keep: exp.Expression, select: list[exp.Expression] | None = None) -> None:
        schema, name = target.db, target.name
        staging = f"_dwml_rewrite_{name}_{uuid.uuid4().hex[:12]}"
        rows = exp.select(*(select or [exp.Star()])).from_(sqlmod.table(schema, name)).where(keep)
        staged = sqlmod.table(schema, staging)
        self._sql(f"CREATE TABLE {self.render(staged)} USING parquet AS {self.render(rows)}")
        try:
            self._sql(f"INSERT OVERWRITE TABLE {self.render(sqlmod.table(schema, name))} "
                      f"SELECT * FROM {self.render(staged)}")
        except WarehouseError as exc:
            raise WarehouseError(f"{exc.args[0]}\nThe rows the table should hold are in {schema}.{staging}.",
                                 hint="copy them back with INSERT OVERWRITE, then drop that table.") from None
        self.drop_table(schema, staging)

    def _rewrite_update(self, statement: exp.Update) -> None:
        target = statement.this
        where = _true(statement.args.get("where"))
        changes = {}
        for assignment in statement.expressions:
            changes[assignment.this.name] = assignment.expression
        select = []
        for column_name, _ in self.columns(target.db, target.name):
            value = changes.get(column_name)
            expression = (exp.If(this=where.copy(), true=value.copy(), false=sqlmod.column(column_name))
                          if value is not None else sqlmod.column(column_name))
            select.append(exp.alias_(expression, sqlmod.ident(column_name)))
        self._rewrite(target, keep=exp.true(), select=select)

    # -- tables ----------------------------------------------------------------------
    def create_schema(self, schema: str) -> None:
        self._refuse_if_read_only(f"creating the schema {schema!r}")
        self._sql(f"CREATE SCHEMA IF NOT EXISTS {self.render(sqlmod.ident(schema))}")

    @contextlib.contextmanager
    def _view(self, data: pa.Table):
        name = f"__dwml_arrow_{next(_view_ids)}_{uuid.uuid4().hex[:8]}"
        frame = self.spark.createDataFrame(_spark_ready(data))
        frame.createOrReplaceTempView(name)
        try:
            yield name
        finally:
            self.spark.catalog.dropTempView(name)

    def write_arrow(self, data: pa.Table, schema: str, name: str, mode: str = "append") -> int:
        if mode not in {"append", "replace"}:
            raise ValueError(f"mode must be 'append' or 'replace', got {mode!r}")
        self._refuse_if_read_only(f"writing {schema}.{name}")
        target = self.render(sqlmod.table(schema, name))
        self.create_schema(schema)
        existing = [] if mode == "replace" else [c for c, _ in self.columns(schema, name)]
        with self._view(data) as view:
            source = self.render(sqlmod.ident(view))
            if not existing:
                self.drop_table(schema, name)
                self._sql(f"CREATE TABLE {target} USING parquet AS SELECT * FROM {source}")
                return data.num_rows
            lowered = {c.lower() for c in existing}
            unknown = [c for c in data.column_names if c.lower() not in lowered]
            if unknown:
                raise WarehouseError(f"Cannot append to {schema}.{name}: it has no column(s) {unknown}.",
                                     hint=f"its columns are {existing}; write with mode='replace' to recreate it.")
            if data.num_rows:
                columns = ", ".join(self.render(sqlmod.ident(c)) for c in data.column_names)
                self._sql(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {source}")
        return data.num_rows

    def columns(self, schema: str, name: str) -> list[tuple[str, str]]:
        try:
            # asked first: a lookup of a missing table would raise, and the raise is logged
            if not (self.spark.catalog.databaseExists(self.render(sqlmod.ident(schema)))
                    and self.spark.catalog.tableExists(self.render(sqlmod.table(schema, name)))):
                return []
            fields = self.spark.table(self.render(sqlmod.table(schema, name))).schema.fields
        except self._errors as exc:
            if any(code in str(exc) for code in _NOT_FOUND):
                return []
            raise self._fail(exc, f"(schema of {schema}.{name})", "catalog lookup") from None
        return [(f.name, f.dataType.simpleString()) for f in fields]

    def lock_table(self, schema: str, name: str) -> None:
        """No locks in Spark; see the module docstring for what this leaves open."""

    @contextlib.contextmanager
    def transaction(self):
        """No transactions in Spark: the block runs statement by statement (see the module docstring)."""
        yield self

    def close(self) -> None:
        """The session stays up: dbt and later calls in this process reuse it (starting one takes seconds)."""


@contextlib.contextmanager
def _quiet_pandas_check():
    """PySpark 4 warns that it does not fully support pandas 3 at every session and Arrow UDF;
    dwml passes Arrow, never pandas, through those paths."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
        yield


def _true(condition) -> exp.Expression:
    """A WHERE condition as a two-valued predicate (NULL counts as false), so NOT keeps NULL rows."""
    if condition is None:
        return exp.true()
    if isinstance(condition, exp.Where):
        condition = condition.this
    return exp.func("coalesce", exp.paren(condition.copy()), exp.false())


def _normalise(table: pa.Table) -> pa.Table:
    """Spark's timestamps come as UTC with a time zone; dwml holds naive UTC, as DuckDB returns them."""
    columns, changed = [], False
    for field, column in zip(table.schema, table.columns):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            column = column.cast(pa.timestamp(field.type.unit))
            changed = True
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names) if changed else table


def _spark_ready(data: pa.Table) -> pa.Table:
    """Arrow columns Spark cannot take, made so: dictionaries decoded, NULL-typed as strings,
    unsigned integers widened."""
    columns = []
    for field, column in zip(data.schema, data.columns):
        t = field.type
        if pa.types.is_dictionary(t):
            column, t = column.cast(t.value_type), t.value_type
        if pa.types.is_null(t):
            column = column.cast(pa.string())
        elif pa.types.is_uint8(t) or pa.types.is_uint16(t):
            column = column.cast(pa.int32())
        elif pa.types.is_uint32(t):
            column = column.cast(pa.int64())
        elif pa.types.is_uint64(t):
            column = column.cast(pa.decimal128(20, 0))
        elif pa.types.is_large_string(t) or pa.types.is_string_view(t):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=data.column_names)
