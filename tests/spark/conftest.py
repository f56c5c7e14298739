"""One local SparkSession for the tests marked `spark`, shared by every test of the session.

They take minutes (a JVM, and every dbt statement is a Spark job), so they run only when asked
for: `pytest -m spark`. A JVM takes seconds to start and a local Derby metastore admits one
process, so the session is made once (as dbt-spark's session method makes it, from the `spark`
target of profiles.yml) in a throwaway warehouse folder, and dbt and dwml share it in this
process. Without pyspark, dbt-spark or Java every test here skips, saying why. Tests keep apart
by schema names.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"


def _missing() -> str | None:
    for module, what in (("pyspark", "pyspark"), ("dbt.adapters.spark", "dbt-spark[session]")):
        top = module.split(".")[0]
        if importlib.util.find_spec(top) is None or importlib.util.find_spec(module) is None:
            return f"{what} is not installed: pip install -e '.[spark]'"
    java = shutil.which("java", path=os.path.join(os.environ["JAVA_HOME"], "bin")) if os.environ.get("JAVA_HOME") \
        else shutil.which("java")
    if java is None:
        return "no Java: Spark 4 needs Java 17 or later (JAVA_HOME or `java` on PATH)"
    try:
        version = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`java -version` failed: {exc}"
    major = next((part.split(".")[0] for part in version.replace('"', " ").split() if part[:2].isdigit()), "0")
    if int(major) < 17:
        return f"Spark 4 needs Java 17 or later; found {version.splitlines()[0] if version else 'an unknown version'}"
    return None


def _asked_for(config) -> bool:
    expression = (config.getoption("markexpr", "") or "").replace(" ", "")
    return "spark" in expression and "notspark" not in expression


@pytest.fixture(scope="session")
def spark_home(request):
    """The folder holding the session's warehouse and metastore (DWML_SPARK_WAREHOUSE)."""
    if not _asked_for(request.config):
        pytest.skip("the Spark tests take minutes: run them with `pytest -m spark` (pip install -e '.[dev,spark]')")
    reason = _missing()
    if reason:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="dwml-spark-"))
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def spark_env(spark_home, monkeypatch) -> Path:
    """The `spark` target of the project's profiles.yml, pointed at the session's warehouse."""
    monkeypatch.setenv("DWML_SPARK_WAREHOUSE", str(spark_home))
    monkeypatch.setenv("DBT_TARGET", "spark")
    return spark_home


@pytest.fixture
def spark_project(spark_env):
    from dwml_py.project import Project

    return Project.locate(DEMO_DIR)


@pytest.fixture(scope="session")
def spark_session(spark_home):
    """The SparkSession itself, created from the `spark` target as dwml's connect() creates it."""
    from dwml_py.project import Project
    from dwml_py.warehouse.spark import session

    mp = pytest.MonkeyPatch()
    mp.setenv("DWML_SPARK_WAREHOUSE", str(spark_home))
    mp.setenv("DBT_TARGET", "spark")
    try:
        settings = Project.locate(DEMO_DIR).profile.settings
        spark = session(settings.get("server_side_parameters"))
    finally:
        mp.undo()
    return spark


@pytest.fixture
def spark_warehouse(spark_session):
    from dwml_py.warehouse.spark import SparkWarehouse

    return SparkWarehouse(spark_session)


def pytest_collection_modifyitems(items):
    # PySpark 4 warns about pandas 3 when dbt-spark starts the session; dwml passes Arrow, not pandas
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"))
