"""The release check: dwml as a user gets it, from the built wheel, never from the checkout.

    python .ci/release_check.py [--work DIR] [--customers N]

1. builds the sdist and, from it, the wheel (`python -m build`), and checks what the wheel holds:
   every Python module, and dwml's dbt package and the demo project exactly as git tracks them
   (nothing that running them writes: target/, logs/, dbt_packages/, *.duckdb, artifacts/);
2. installs the wheel (not editable) with its dependencies into a fresh virtual environment;
3. runs `dwml demo run --customers N` in an empty folder;
4. runs the consumer-project flow on a copy of tests/user_project that has no packages.yml yet:
   `dwml init`, `dbt build`, `dwml train`, `dwml deploy --scaffold`, `dbt run` of the scoring model.

Every command runs outside the checkout, with the fresh environment's `dwml` and `dbt`, and the
dbt and dwml variables of the calling shell removed. The environment is left in DIR/venv (CI then
runs the dbt 1.12 tests in it; see .ci/run). Exit 1 with the failing step's output on any failure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CHECKOUT))

from tests.user_project.make_seeds import write_seeds  # noqa: E402  (stdlib only)

# What the wheel carries as dwml_py/dbt_package/: these tracked files of the checkout, and no others.
DBT_PACKAGE_PATHS = ("dbt_project.yml", "macros", "models/dwml", "demo")
DBT_PACKAGE_SUFFIXES = (".yml", ".sql", ".md")
NEVER_SHIPPED = ("target/", "logs/", "dbt_packages/", "artifacts/", ".duckdb", "package-lock.yml")
SCORING_MODEL = "churn_model_scores"  # the shop has its own churn_scores model


class CheckFailed(Exception):
    pass


def step(title: str):
    """Print the step, time it, and report its seconds."""

    class Step:
        def __enter__(self):
            self.started = time.perf_counter()
            print(f"== {title}", flush=True)
            return self

        def __exit__(self, kind, *_):
            if kind is None:
                print(f"   done in {time.perf_counter() - self.started:.0f} s", flush=True)

    return Step()


def run(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 900, timed: bool = False) -> str:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if timed:
        print(f"   {' '.join(map(str, args))}: {time.perf_counter() - started:.0f} s", flush=True)
    if done.returncode != 0:
        raise CheckFailed(f"`{' '.join(map(str, args))}` in {cwd} exited {done.returncode}:\n"
                          f"{done.stdout[-6000:]}\n{done.stderr[-6000:]}")
    return done.stdout


def tracked_files() -> set[str]:
    listed = run(["git", "ls-files", "--", *DBT_PACKAGE_PATHS], cwd=CHECKOUT).split()
    return {p for p in listed if p.endswith(DBT_PACKAGE_SUFFIXES)}


def check_wheel(wheel: Path, sdist: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    prefix = "dwml_py/dbt_package/"
    shipped = {n[len(prefix):] for n in names if n.startswith(prefix)}
    expected = tracked_files()
    if shipped != expected:
        raise CheckFailed(f"the wheel's dbt package differs from the tracked files: missing "
                          f"{sorted(expected - shipped)[:10]}, extra {sorted(shipped - expected)[:10]}")
    bad = sorted(n for n in names if any(part in n for part in NEVER_SHIPPED))
    if bad:
        raise CheckFailed(f"the wheel holds files that running the demo writes: {bad[:10]}")
    modules = set(run(["git", "ls-files", "--", "dwml_py/*.py"], cwd=CHECKOUT).split())
    if modules - names:
        raise CheckFailed(f"the wheel lacks Python modules: {sorted(modules - names)[:10]} (list their package "
                          "in pyproject.toml's [tool.setuptools] packages)")
    print(f"   wheel {wheel.name}: {wheel.stat().st_size / 1024:.0f} KiB, {len(names)} files, "
          f"{len(shipped)} of them the dbt package and the demo project; sdist {sdist.stat().st_size / 1024:.0f} KiB")


def user_env(venv: Path, **extra: str) -> dict:
    """The calling environment less dbt's and dwml's settings, with the fresh environment first on PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DBT_", "DWML_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               DBT_SEND_ANONYMOUS_USAGE_STATS="false", **extra)
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, help="folder for the build, the environment and the projects "
                        "(default: a new temporary folder)")
    parser.add_argument("--customers", type=int, default=2000)
    options = parser.parse_args()
    work = (options.work or Path(tempfile.mkdtemp(prefix="dwml-release-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        with step("build the sdist, and the wheel from it (python -m build)"):
            dist = work / "dist"
            shutil.rmtree(dist, ignore_errors=True)
            run([sys.executable, "-m", "build", "--outdir", str(dist), str(CHECKOUT)], cwd=work)
            wheel, sdist = next(dist.glob("*.whl")), next(dist.glob("*.tar.gz"))
            check_wheel(wheel, sdist)

        venv = work / "venv"
        with step(f"install {wheel.name} into a fresh virtual environment ({venv})"):
            shutil.rmtree(venv, ignore_errors=True)
            run([sys.executable, "-m", "venv", str(venv)], cwd=work)
            run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile", str(wheel)], cwd=work)
            env = user_env(venv)
            where = run([str(venv / "bin" / "python"), "-c", "import dwml_py.package_files as p; "
                         "print(p.__file__); print(p.dbt_package_dir())"], cwd=work, env=env).split()
            if not all(str(venv) in w for w in where):
                raise CheckFailed(f"dwml_py or its dbt package is not the installed wheel's: {where}")
            print("   " + run(["dwml", "--version"], cwd=work, env=env).strip() + f", dbt package in {where[1]}")

        demo = work / "demo"
        with step(f"dwml demo run --customers {options.customers} in an empty folder ({demo})"):
            shutil.rmtree(demo, ignore_errors=True)
            demo.mkdir()
            out = run(["dwml", "demo", "run", "--customers", str(options.customers)], cwd=demo, env=env, timed=True)
            if "Demo complete" not in out or not (demo / "dbt_project.yml").is_file():
                raise CheckFailed(f"the demo did not complete in {demo}:\n{out[-4000:]}")

        shop = work / "shop"
        with step(f"a user's dbt project ({shop}): dwml init, dbt build, dwml train, deploy --scaffold, dbt run"):
            shutil.rmtree(shop, ignore_errors=True)
            shutil.copytree(CHECKOUT / "tests" / "user_project", shop, ignore=shutil.ignore_patterns("__pycache__"))
            (shop / "packages.yml").unlink()  # a project before dwml: `dwml init` adds it
            write_seeds(shop)
            env = user_env(venv, SHOP_DUCKDB_PATH=str(work / "shop.duckdb"), DWML_ARTIFACT_DIR=str(work / "artifacts"))
            print("   " + run(["dwml", "init", "--model", "customer_features"], cwd=shop, env=env, timed=True)
                  .split("dwml doctor:")[0].strip().replace("\n", "\n   "))
            if str(venv) not in (shop / "packages.yml").read_text():
                raise CheckFailed("dwml init did not point packages.yml at the installed package data")
            run(["dbt", "build"], cwd=shop, env=env, timed=True)
            run(["dwml", "train", "churn", "--param", "n_estimators=30"], cwd=shop, env=env, timed=True)
            run(["dwml", "deploy", "churn", "--version", "1", "--scaffold", "--scaffold-name", SCORING_MODEL],
                cwd=shop, env=env, timed=True)
            run(["dbt", "run", "--select", SCORING_MODEL], cwd=shop, env=env, timed=True)
            scored = run([str(venv / "bin" / "python"), "-c", "import duckdb, sys; print(duckdb.connect(sys.argv[1], "
                          f"read_only=True).sql('select count(*) from main.{SCORING_MODEL}').fetchall()[0][0])",
                          str(work / "shop.duckdb")], cwd=shop, env=env).strip()
            if not scored.isdigit() or int(scored) == 0:
                raise CheckFailed(f"dbt run of {SCORING_MODEL} scored no rows ({scored!r})")
            print(f"   {SCORING_MODEL}: {scored} rows scored in SQL by dbt")
    except (CheckFailed, subprocess.TimeoutExpired) as exc:
        print(f"release check FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"release check passed in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
