"""PostgreSQL through psycopg2 (the `postgres` extra), with the settings dbt-postgres reads.

Arrow out: rows come through a cursor (a server-side one for `fetch_batches`, so memory stays
bounded) and are turned into Arrow columns typed from the result's type OIDs, not guessed from
the values. Arrow in: `COPY ... FROM STDIN` in CSV, which is one round trip however many
rows; `executemany` would be one per row.

Statements run in autocommit mode; `transaction()` wraps a block in BEGIN/COMMIT.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.csv as pacsv
from sqlglot import exp

from dwml_py import sql as sqlmod
from dwml_py.errors import ConfigError, WarehouseError
from dwml_py.warehouse.base import Capabilities, InformationSchemaColumns, Warehouse, refused_hint

_cursor_ids = itertools.count()

# Result type OIDs (pg_type) -> Arrow types. NUMERIC is handled apart: it needs the typmod.
_OID_TYPES = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 26: pa.int64(),
    700: pa.float32(), 701: pa.float64(), 25: pa.string(), 1043: pa.string(), 1042: pa.string(),
    19: pa.string(), 18: pa.string(), 114: pa.string(), 3802: pa.string(), 2950: pa.string(),
    1082: pa.date32(), 1114: pa.timestamp("us"), 1184: pa.timestamp("us", tz="UTC"),
    1186: pa.duration("us"), 17: pa.binary(), 1083: pa.time64("us"),
}
_NUMERIC_OID = 1700


def _arrow_to_pg(field: pa.Field) -> exp.DataType:
    """The Postgres column type a written Arrow column gets (the reverse of _OID_TYPES)."""
    t = field.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        name = "BOOLEAN"
    elif pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        name = "SMALLINT"
    elif pa.types.is_int32(t) or pa.types.is_uint16(t):
        name = "INT"
    elif pa.types.is_int64(t) or pa.types.is_uint32(t):
        name = "BIGINT"
    elif pa.types.is_uint64(t):
        name = "NUMERIC(20, 0)"
    elif pa.types.is_float16(t) or pa.types.is_float32(t):
        name = "REAL"
    elif pa.types.is_float64(t):
        name = "DOUBLE PRECISION"
    elif pa.types.is_decimal(t):
        name = f"NUMERIC({t.precision}, {t.scale})"
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_null(t):
        name = "TEXT"
    elif pa.types.is_date(t):
        name = "DATE"
    elif pa.types.is_timestamp(t):
        name = "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    elif pa.types.is_time(t):
        name = "TIME"
    else:
        raise WarehouseError(f"Cannot write the Arrow column {field.name!r} of type {t} to PostgreSQL.",
                             hint="cast it to a number, text, date or timestamp before writing.")
    return exp.DataType.build(name, dialect="postgres")


def _connect_hint(settings: dict, message: str) -> str:
    where = f"{settings.get('host')}:{settings.get('port')}"
    low = message.lower()
    if "authentication" in low or "no password supplied" in low or ("role" in low and "does not exist" in low):
        return ("check `user:` and `password:` of the target in profiles.yml (or DWML_PG_USER/DWML_PG_PASSWORD); "
                "`dbt debug` shows the same.")
    if "does not exist" in low and "database" in low:
        return f"create the database on {where} or fix `dbname:` of the target in profiles.yml."
    if "refused" in low or "could not connect" in low or "timeout" in low or "translate host name" in low:
        return (f"is a PostgreSQL server listening on {where}? Start it, or fix `host:`/`port:` of the target in "
                "profiles.yml (DWML_PG_HOST/DWML_PG_PORT for the demo profile).")
    return "check the target in profiles.yml; `dbt debug` tries the same connection."


class PostgresWarehouse(InformationSchemaColumns, Warehouse):
    dialect = "postgres"
    capabilities = Capabilities(asof_join=False, approx_count_distinct=False, arrow_native=False)

    def __init__(self, host: str = "localhost", port: int = 5432, user: str | None = None,
                 password: str | None = None, dbname: str | None = None, schema: str = "public",
                 sslmode: str | None = None, connect_timeout: int = 10, search_path: str | None = None,
                 role: str | None = None, keepalives_idle: int | None = None, application_name: str = "dwml",
                 read_only: bool = False):
        try:
            import psycopg2
            import psycopg2.extensions
        except ImportError as exc:
            raise ConfigError("The PostgreSQL driver (psycopg2) is not installed.",
                              hint='install the postgres extra: pip install "dwml-dbt[postgres]".') from exc
        self._pg = psycopg2
        self.schema = schema
        params = {"host": host, "port": int(port), "user": user, "password": password or None, "dbname": dbname,
                  "sslmode": sslmode, "connect_timeout": int(connect_timeout), "application_name": application_name,
                  "keepalives_idle": keepalives_idle}
        options = []
        if search_path:
            options.append(f"-c search_path={search_path}")
        if read_only:  # every transaction of the session refuses writes: a read-only call stays one
            options.append("-c default_transaction_read_only=on")
        if options:
            params["options"] = " ".join(options)
        self.read_only = read_only
        params = {k: v for k, v in params.items() if v is not None}
        try:
            self.con = psycopg2.connect(**params)
        except psycopg2.Error as exc:
            message = str(exc).strip()
            if password:  # libpq does not echo passwords, but a DSN in an error message could
                message = message.replace(str(password), "****")
            raise WarehouseError(f"Cannot connect to PostgreSQL at {host}:{port} (database {dbname!r}, user "
                                 f"{user!r}): {message}", hint=_connect_hint(params, message)) from None
        self.con.autocommit = True
        # JSON comes back as text, like every other engine returns it; NUMERIC as text, turned
        # into decimal128 or float64 below without a Python Decimal per value.
        for oids, name in (((114, 3802), "DWML_JSON"), ((_NUMERIC_OID,), "DWML_NUMERIC")):
            caster = psycopg2.extensions.new_type(oids, name, lambda value, cur: value)
            psycopg2.extensions.register_type(caster, self.con)
        if role:
            self._run(f"SET ROLE {sqlmod.render(sqlmod.ident(role), 'postgres')}")
        self._in_transaction = False

    @classmethod
    def from_settings(cls, settings: dict, read_only: bool = False) -> "PostgresWarehouse":
        """From a dbt-postgres target: host, port, user, password/pass, dbname/database, schema, sslmode, ..."""
        missing = [k for k in ("host", "user") if not settings.get(k)]
        if not (settings.get("dbname") or settings.get("database")):
            missing.append("dbname")
        if missing:
            raise ConfigError(f"The postgres target lacks {', '.join(missing)}.",
                              hint="set them in profiles.yml as for dbt-postgres (host, port, user, password, "
                              "dbname, schema).")
        return cls(host=str(settings["host"]), port=int(settings.get("port", 5432)), user=str(settings["user"]),
                   password=settings.get("password", settings.get("pass")),
                   dbname=str(settings.get("dbname") or settings.get("database")),
                   schema=str(settings.get("schema", "public")), sslmode=settings.get("sslmode"),
                   connect_timeout=int(settings.get("connect_timeout", 10)),
                   search_path=settings.get("search_path"), role=settings.get("role"),
                   keepalives_idle=settings.get("keepalives_idle"), read_only=read_only)

    # -- statements ------------------------------------------------------------------
    def _fail(self, exc: Exception, sql: str, what: str) -> WarehouseError:
        detail = (getattr(exc, "pgerror", None) or str(exc)).strip()
        missing = getattr(exc, "pgcode", None) in ("42P01", "3F000")  # undefined table / schema
        return WarehouseError(f"PostgreSQL refused a {what}: {detail}\nSQL: {sql[:500]}", hint=refused_hint(missing))

    def _run(self, sql: str, *, what: str = "statement"):
        cursor = self.con.cursor()
        try:
            cursor.execute(sql)
        except self._pg.Error as exc:
            cursor.close()
            raise self._fail(exc, sql, what) from None
        return cursor

    def execute(self, statement) -> None:
        self._run(self.render(statement)).close()

    def fetch_arrow(self, query) -> pa.Table:
        cursor = self._run(self.render(query), what="query")
        try:
            if cursor.description is None:
                return pa.table({})
            return _to_arrow(cursor.description, cursor.fetchall())
        finally:
            cursor.close()

    def fetch_batches(self, query, batch_size: int = 100_000) -> Iterator[pa.RecordBatch]:
        sql = self.render(query)
        # A named cursor is a server-side cursor: rows arrive batch_size at a time. WITH HOLD
        # lets it live outside a transaction, as autocommit requires.
        cursor = self.con.cursor(name=f"dwml_cursor_{next(_cursor_ids)}", withhold=not self._in_transaction)
        cursor.itersize = batch_size
        try:
            cursor.execute(sql)
            first = cursor.fetchmany(batch_size)
        except self._pg.Error as exc:
            with contextlib.suppress(Exception):
                cursor.close()
            raise self._fail(exc, sql, "query") from None
        return self._batches(cursor, first, batch_size)

    def _batches(self, cursor, rows, batch_size) -> Iterator[pa.RecordBatch]:
        try:
            description = cursor.description
            yield from _to_arrow(description, rows).to_batches()
            while True:
                rows = cursor.fetchmany(batch_size)
                if not rows:
                    break
                yield from _to_arrow(description, rows).to_batches()
        finally:
            with contextlib.suppress(Exception):
                cursor.close()

    # -- tables ----------------------------------------------------------------------
    def write_arrow(self, data: pa.Table, schema: str, name: str, mode: str = "append") -> int:
        if mode not in {"append", "replace"}:
            raise ValueError(f"mode must be 'append' or 'replace', got {mode!r}")
        target = sqlmod.table(schema, name)
        with self._maybe_transaction():
            self.create_schema(schema)
            existing = [] if mode == "replace" else [c for c, _ in self.columns(schema, name)]
            if not existing:
                self.drop_table(schema, name)
                columns = [exp.ColumnDef(this=sqlmod.ident(f.name), kind=_arrow_to_pg(f)) for f in data.schema]
                self.execute(exp.Create(this=exp.Schema(this=target, expressions=columns), kind="TABLE"))
            else:
                unknown = [c for c in data.column_names if c not in existing]
                if unknown:
                    raise WarehouseError(f"Cannot append to {schema}.{name}: it has no column(s) {unknown}.",
                                         hint=f"its columns are {existing}; write with mode='replace' to "
                                         "recreate it.")
            if data.num_rows:
                self._copy_in(data, target)
        return data.num_rows

    def _copy_in(self, data: pa.Table, target: exp.Table) -> None:
        # CSV: NULL is an unquoted empty field, an empty string a quoted one ("") - which is
        # exactly what pyarrow writes, strings always being quoted.
        buffer = io.BytesIO()
        pacsv.write_csv(_csv_ready(data), buffer, pacsv.WriteOptions(include_header=False))
        buffer.seek(0)
        columns = ", ".join(sqlmod.render(sqlmod.ident(c), "postgres") for c in data.column_names)
        sql = f"COPY {sqlmod.render(target, 'postgres')} ({columns}) FROM STDIN WITH (FORMAT csv)"
        cursor = self.con.cursor()
        try:
            cursor.copy_expert(sql, buffer)
        except self._pg.Error as exc:
            raise self._fail(exc, sql, "COPY") from None
        finally:
            cursor.close()

    def lock_table(self, schema: str, name: str) -> None:
        if self._in_transaction:
            # SHARE ROW EXCLUSIVE conflicts with itself and with writes, not with plain reads.
            self._run(f"LOCK TABLE {sqlmod.render(sqlmod.table(schema, name), 'postgres')} "
                      "IN SHARE ROW EXCLUSIVE MODE").close()

    @contextlib.contextmanager
    def _maybe_transaction(self):
        if self._in_transaction:
            yield self
        else:
            with self.transaction():
                yield self

    @contextlib.contextmanager
    def transaction(self):
        if self._in_transaction:  # nested blocks join the outer transaction
            yield self
            return
        self.con.autocommit = False
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            with contextlib.suppress(Exception):
                self.con.rollback()
            raise
        else:
            try:
                self.con.commit()
            except self._pg.Error as exc:
                raise self._fail(exc, "COMMIT", "commit") from None
        finally:
            self._in_transaction = False
            with contextlib.suppress(Exception):
                self.con.autocommit = True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.con.close()


def _arrow_type(column) -> pa.DataType | None:
    """Arrow type of a result column; None lets pyarrow infer it (arrays and rarer types)."""
    if column.type_code == _NUMERIC_OID:
        precision, scale = column.precision, column.scale
        # numeric(p, s) keeps its exactness; a numeric without typmod (sum(), avg() of integers)
        # has no fixed scale, so it becomes a double like DuckDB's aggregates.
        if precision and 0 < precision <= 38 and scale is not None and 0 <= scale <= precision:
            return pa.decimal128(precision, scale)
        return pa.float64()
    return _OID_TYPES.get(column.type_code)


def _to_arrow(description, rows: list[tuple]) -> pa.Table:
    values = list(zip(*rows)) if rows else [()] * len(description)
    arrays, names = [], []
    for column, column_values in zip(description, values):
        target = _arrow_type(column)
        if column.type_code == _NUMERIC_OID:  # text from the caster: let Arrow parse it in C
            array = pa.array(column_values, type=pa.string()).cast(target)
        elif target is not None:
            array = pa.array(column_values, type=target)
        else:
            array = pa.array(column_values) if column_values else pa.array([], type=pa.string())
        arrays.append(array)
        names.append(column.name)
    return pa.Table.from_arrays(arrays, names=_unique(names))


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n] - 1}")
    return out


def _csv_ready(data: pa.Table) -> pa.Table:
    """Columns the CSV writer cannot write as Postgres reads them, made so."""
    columns = []
    for field, column in zip(data.schema, data.columns):
        if pa.types.is_dictionary(field.type):
            column = column.cast(field.type.value_type)
        elif pa.types.is_null(field.type):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=data.column_names)
