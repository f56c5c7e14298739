"""The interface every engine implements. Domain modules only talk to this."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

from typing import TYPE_CHECKING

from sqlglot import exp

from dwml_py import sql as sqlmod

if TYPE_CHECKING:  # Arrow is imported where data moves, not to list a few rows
    import pyarrow as pa


# The hint of a refused statement: a relation the query reads that is not there is the usual
# reason on a project's first run (a model in the manifest that was never built), anything else
# is more likely SQL dwml generated wrongly.
MISSING_RELATION_HINT = ("a table or view it reads is not in the warehouse: build it with dbt (`dbt run --select "
                         "MODEL`, or `dbt build` for everything), or check the name.")
GENERATED_SQL_HINT = "this is likely a dwml bug if the SQL was generated; please report it with the SQL above."


def refused_hint(missing_relation: bool) -> str:
    return MISSING_RELATION_HINT if missing_relation else GENERATED_SQL_HINT


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do natively; callers pick a portable fallback when a flag is off."""

    asof_join: bool = False
    approx_count_distinct: bool = False
    arrow_native: bool = False
    transactions: bool = True


class Warehouse(ABC):
    dialect: str = ""
    capabilities: Capabilities = Capabilities()
    read_only: bool = False  # opened read-only: the engine refuses writes (dwml_py.call_context)

    # -- statements ------------------------------------------------------------------
    def render(self, expression: exp.Expression | str) -> str:
        return expression if isinstance(expression, str) else sqlmod.render(expression, self.dialect)

    @abstractmethod
    def execute(self, statement: exp.Expression | str) -> None:
        """Run a statement that returns nothing of interest."""

    @abstractmethod
    def fetch_arrow(self, query: exp.Expression | str) -> pa.Table:
        """Run a query and return all rows (for small results: aggregates, metadata)."""

    @abstractmethod
    def fetch_batches(self, query: exp.Expression | str, batch_size: int = 100_000) -> Iterable[pa.RecordBatch]:
        """Stream a query's rows as Arrow record batches; memory bounded by batch_size."""

    def fetch_rows(self, query: exp.Expression | str) -> list[dict]:
        return self.fetch_arrow(query).to_pylist()

    def fetch_scalar(self, query: exp.Expression | str):
        table = self.fetch_arrow(query)
        return table.column(0)[0].as_py() if table.num_rows else None

    # -- tables ----------------------------------------------------------------------
    @abstractmethod
    def write_arrow(self, data: pa.Table, schema: str, name: str, mode: str = "append") -> int:
        """Write an Arrow table: mode 'append' (creating the table when missing) or 'replace'.

        Returns the number of rows written.
        """

    @abstractmethod
    def columns(self, schema: str, name: str) -> list[tuple[str, str]]:
        """(column name, engine type) of a table, in order; [] when it does not exist."""

    def table_exists(self, schema: str, name: str) -> bool:
        return bool(self.columns(schema, name))

    def create_schema(self, schema: str) -> None:
        self.execute(exp.Create(this=sqlmod.table(None, schema), kind="SCHEMA", exists=True))

    def drop_table(self, schema: str, name: str) -> None:
        self.execute(sqlmod.drop("TABLE", sqlmod.table(schema, name)))

    def lock_table(self, schema: str, name: str) -> None:
        """Make concurrent writers of the table wait until this transaction ends, so a
        read-then-write (the next version number) cannot race. A no-op on engines that allow
        one writer at a time (DuckDB) and outside a transaction."""

    @abstractmethod
    def transaction(self):
        """A context manager: everything inside commits together or not at all."""

    # -- lifetime --------------------------------------------------------------------
    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class InformationSchemaColumns:
    """columns() and schema_columns() read from the SQL standard's information_schema, for the
    engines that have it (DuckDB, PostgreSQL; Spark lists columns its own way)."""

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
