"""The evaluation's key join on PostgreSQL: every key type, written by batch scoring and as
PostgreSQL casts it to text, finds its label row (the checks: tests/unit/test_performance_keys.py)."""

from __future__ import annotations

import pytest

from tests.unit.test_performance_keys import check_every_key_type

pytestmark = [pytest.mark.postgres]


def test_every_key_type_finds_its_label_row_on_postgres(pg_database):
    from dwml_py.warehouse.postgres import PostgresWarehouse

    pg = PostgresWarehouse(host=pg_database["DWML_PG_HOST"], port=int(pg_database["DWML_PG_PORT"]),
                           user=pg_database["DWML_PG_USER"], password=pg_database["DWML_PG_PASSWORD"],
                           dbname=pg_database["DWML_PG_DBNAME"])
    try:
        check_every_key_type(pg, "keys")
    finally:
        pg.close()
