"""The generated benchmark data: `reference` (the training data) and `current` (the data to score
and check for drift) in one DuckDB file, deterministic by seed.

Each table: `id` (the entity key), 20 numeric features `num_00`..`num_19` (DOUBLE; four shapes:
triangular, skewed log-normal-like, uniform, integer-valued with ties; every third one 2% NULL),
4 categorical features `cat_5`, `cat_50`, `cat_200`, `cat_1000` (VARCHAR with that many values,
skewed so there are frequent and rare ones) and a binary `label` that depends on a few features.
`current` is drawn with the next seed and drifts: num_00..num_04 shift by 0.3 of their scale and
cat_5 is more skewed, so drift detection has something to find.

Values come from DuckDB's `hash(row, seed, k)` (no Python data is built), so a file is the same
for the same rows, seed and DuckDB version; it is kept in --data-dir and reused.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from sqlglot import exp

from dwml_py import sql as sqlmod

GENERATOR_VERSION = 1
NUMERIC = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = {"cat_5": 5, "cat_50": 50, "cat_200": 200, "cat_1000": 1000}
ENTITY, LABEL = "id", "label"
FEATURES = NUMERIC + list(CATEGORICAL)
TABLES = ("reference", "current")
_MOD = 1_000_003


def _num(value) -> exp.Expression:
    return exp.Literal.number(value)


def _uniform(seed: int, k: int) -> exp.Expression:
    """A uniform number in [0, 1) per row: hash(range, seed, k) mod a prime, scaled."""
    hashed = exp.func("hash", exp.column("range"), _num(seed), _num(k))
    return exp.Paren(this=exp.Div(this=exp.Paren(this=exp.Mod(this=hashed, expression=_num(_MOD))),
                                  expression=_num(float(_MOD))))


def _numeric(i: int, u: exp.Expression, v: exp.Expression, drift: bool) -> exp.Expression:
    scale = float(i + 1)
    shape = i % 4
    if shape == 0:  # triangular on [-scale, scale]
        value = exp.Mul(this=exp.Paren(this=exp.Sub(this=exp.Add(this=u, expression=v), expression=_num(1))),
                        expression=_num(scale))
    elif shape == 1:  # skewed: exp(3u)
        value = exp.Mul(this=exp.func("exp", exp.Mul(this=_num(3), expression=u)), expression=_num(scale))
    elif shape == 2:  # uniform on [0, 100 scale)
        value = exp.Mul(this=u, expression=_num(100 * scale))
    else:  # integer values 0..19: ties, as counts have
        value = exp.func("floor", exp.Mul(this=u, expression=_num(20)))
    if drift and i < 5:
        value = exp.Add(this=exp.Paren(this=value), expression=_num(0.3 * scale * (100 if shape == 2 else 1)))
    return value


def select_table(rows: int, seed: int, drift: bool) -> exp.Select:
    """The SELECT that generates one table."""
    u = {k: _uniform(seed, k) for k in range(60)}
    columns: list[exp.Expression] = [exp.alias_(exp.column("range"), ENTITY)]
    for i, name in enumerate(NUMERIC):
        value = _numeric(i, u[i], u[20 + i], drift)
        if i % 3 == 0:  # 2% NULL
            null = exp.EQ(this=exp.Mod(this=exp.func("hash", exp.column("range"), _num(seed), _num(100 + i)),
                                       expression=_num(50)), expression=_num(0))
            value = exp.Case(ifs=[exp.If(this=null, true=exp.Null())], default=value)
        columns.append(exp.alias_(exp.cast(value, exp.DataType.Type.DOUBLE), name))
    for j, (name, cardinality) in enumerate(CATEGORICAL.items()):
        power = 3 if drift and cardinality == 5 else 2  # skewed: u**2 favours the low codes
        code = exp.func("floor", exp.Mul(this=exp.Pow(this=u[40 + j], expression=_num(power)),
                                         expression=_num(cardinality)))
        text = exp.DPipe(this=exp.Literal.string("v"),
                         expression=exp.cast(exp.cast(code, exp.DataType.Type.BIGINT), exp.DataType.Type.VARCHAR))
        columns.append(exp.alias_(text, name))
    # label: a noisy threshold on num_00, num_02 and cat_5 (its first code is the most frequent)
    signal = exp.Add(
        this=exp.Add(this=exp.Mul(this=_num(0.8), expression=u[0]), expression=exp.Mul(this=_num(0.6), expression=u[2])),
        expression=exp.Add(this=exp.Mul(this=_num(0.5), expression=exp.cast(exp.LT(
            this=exp.Pow(this=u[40], expression=_num(2)), expression=_num(0.2)), exp.DataType.Type.DOUBLE)),
            expression=exp.Mul(this=_num(0.7), expression=u[50])))
    columns.append(exp.alias_(exp.cast(exp.GT(this=exp.cast(signal, exp.DataType.Type.DOUBLE), expression=_num(1.2)),
                                       exp.DataType.Type.INT), LABEL))
    return exp.select(*columns).from_(exp.func("range", _num(int(rows))))


def path_for(data_dir: Path, rows: int, seed: int) -> Path:
    return Path(data_dir) / f"bench-v{GENERATOR_VERSION}-{rows}-s{seed}.duckdb"


def generate(data_dir: Path, rows: int, seed: int = 7) -> Path:
    """The DuckDB file with `reference` and `current` of `rows` rows each (made once, then reused)."""
    path = path_for(data_dir, rows, seed)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    con = duckdb.connect(str(partial))
    try:
        for table, table_seed, drift in (("reference", seed, False), ("current", seed + 1, True)):
            create = exp.Create(this=sqlmod.table("main", table), kind="TABLE",
                                expression=select_table(rows, table_seed, drift))
            con.execute(create.sql("duckdb"))
        con.execute("CHECKPOINT")
    finally:
        con.close()
    partial.rename(path)
    return path
