"""The evaluation's key join on Spark: every key type, written by batch scoring and as Spark
casts it to text, finds its label row (the checks: tests/unit/test_performance_keys.py)."""

from __future__ import annotations

import pytest

from tests.unit.test_performance_keys import check_every_key_type

pytestmark = [pytest.mark.spark]


def test_every_key_type_finds_its_label_row_on_spark(spark_session):
    from dwml_py.warehouse.spark import SparkWarehouse

    check_every_key_type(SparkWarehouse(spark_session), "keys_s")
