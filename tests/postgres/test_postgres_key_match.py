"""The evaluation's key join on PostgreSQL: every key type, written by batch scoring and as
PostgreSQL casts it to text, finds its label row (the checks: tests/unit/test_performance_keys.py)."""

from __future__ import annotations

import pytest

from tests.unit.test_performance_keys import check_every_key_type

pytestmark = [pytest.mark.postgres]


def test_every_key_type_finds_its_label_row_on_postgres(pg_module_warehouse):
    check_every_key_type(pg_module_warehouse, "keys")
