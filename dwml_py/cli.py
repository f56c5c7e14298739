"""The `dwml` command line. It only parses, calls the library and renders.

Every command takes the common flags (--project-dir, --profiles-dir, --target, --json,
--debug). Known errors print one line and a hint and exit 1 (2 when a gate refused or an
alert fired); --debug shows the traceback.
"""

import functools
import inspect
import traceback
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer

from dwml_py import __version__
from dwml_py.console import ConsoleProgress, print_error, print_json, stdout
from dwml_py.errors import DwmlError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="dwml: warehouse-native ML for dbt projects.")
demo_app = typer.Typer(no_args_is_help=True, help="The demo warehouse and the whole flow on it.")
app.add_typer(demo_app, name="demo")


@dataclass
class Invocation:
    """The common flags of one command."""

    project_dir: Optional[Path]
    profiles_dir: Optional[Path]
    target: Optional[str]
    json: bool
    debug: bool

    def project(self):
        from dwml_py.project import Project

        return Project.locate(self.project_dir, self.profiles_dir, self.target)

    def progress(self):
        return ConsoleProgress()


_COMMON = [
    inspect.Parameter("project_dir", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
        Optional[Path], typer.Option("--project-dir", help="dbt project folder (default: DBT_PROJECT_DIR, "
                                     "or the nearest folder with dbt_project.yml).", show_default=False)]),
    inspect.Parameter("profiles_dir", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
        Optional[Path], typer.Option("--profiles-dir", help="folder of profiles.yml (default: DBT_PROFILES_DIR, "
                                     "the working folder, the project, ~/.dbt).", show_default=False)]),
    inspect.Parameter("target", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
        Optional[str], typer.Option("--target", "-t", help="dbt target (default: DBT_TARGET or the profile's).",
                                    show_default=False)]),
    inspect.Parameter("json_output", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
        bool, typer.Option("--json", help="print the result as JSON (the object the Python API returns).")]),
    inspect.Parameter("debug", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
        bool, typer.Option("--debug", help="show tracebacks.")]),
]


def command(typer_app: typer.Typer, name: str, **kwargs):
    """Register `func(inv, ...)` as a command with the common flags and the one error handler."""

    def decorator(func):
        own = list(inspect.signature(func).parameters.values())[1:]  # drop `inv`

        @functools.wraps(func)
        def wrapper(**values):
            inv = Invocation(values.pop("project_dir"), values.pop("profiles_dir"), values.pop("target"),
                             values.pop("json_output"), values.pop("debug"))
            try:
                func(inv, **values)
            except DwmlError as exc:
                if inv.debug:
                    traceback.print_exc()
                if inv.json:
                    print_json(exc.to_dict())
                print_error(type(exc).__name__, exc.message, exc.hint)
                raise typer.Exit(exc.exit_code) from None
            except (typer.Exit, typer.Abort, KeyboardInterrupt):
                raise
            except Exception as exc:  # an unexpected failure: still one line unless --debug
                if inv.debug:
                    traceback.print_exc()
                print_error(type(exc).__name__, f"unexpected {type(exc).__name__}: {exc}",
                            "rerun with --debug for the traceback, and please report it.")
                raise typer.Exit(1) from None

        wrapper.__signature__ = inspect.Signature(own + _COMMON)
        wrapper.__annotations__ = {p.name: p.annotation for p in own + _COMMON}
        del wrapper.__wrapped__  # typer must read the new signature, not the wrapped one
        typer_app.command(name, **kwargs)(wrapper)
        return func

    return decorator


def _version_callback(value: bool):
    if value:
        stdout.print(f"dwml {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                                                help="print the version and exit")] = False):
    """dwml: warehouse-native ML for dbt projects."""


# -- demo ---------------------------------------------------------------------------------

CustomersOpt = Annotated[Optional[int], typer.Option("--customers", "-n", help="customers to generate (default: the "
                                                     "demo size, about a minute end to end).", show_default=False)]
SeedOpt = Annotated[int, typer.Option("--seed", help="random seed; the same seed gives the same data.")]
MonthsOpt = Annotated[Optional[int], typer.Option("--months", help="monthly snapshots to generate (>= 18).",
                                                  show_default=False)]
DefectsOpt = Annotated[bool, typer.Option("--inject-defects", help="plant duplicate keys and a null spike so the "
                                          "quality gate has something to stop.")]


def _demo_config(customers, seed, months, inject_defects):
    from dwml_py.demo.generator import DemoConfig

    defaults = DemoConfig()
    return DemoConfig(customers=customers or defaults.customers, seed=seed, months=months or defaults.months,
                      start_date=defaults.start_date, inject_defects=inject_defects)


@command(demo_app, "generate")
def demo_generate(inv: Invocation, customers: CustomersOpt = None, seed: SeedOpt = 42, months: MonthsOpt = None,
                  inject_defects: DefectsOpt = False):
    """Generate the demo warehouse: raw tables of a subscription business (schema `raw`)."""
    from dwml_py.demo import generate_demo

    result = generate_demo(inv.project(), _demo_config(customers, seed, months, inject_defects),
                           inv.progress())
    if inv.json:
        print_json(result.to_dict())
    else:
        stdout.print(f"Wrote {sum(result.rows.values()):,} rows into schema raw. Next: `dbt build`, or `dwml demo run`.")


@command(demo_app, "run")
def demo_run(inv: Invocation, customers: CustomersOpt = None, seed: SeedOpt = 42, months: MonthsOpt = None,
             inject_defects: DefectsOpt = False):
    """The main job: generate the demo, build and test it with dbt, and run the ML flow on it."""
    from dwml_py.demo import run_demo

    result = run_demo(inv.project(), _demo_config(customers, seed, months, inject_defects), inv.progress())
    if inv.json:
        print_json(result.to_dict())
    else:
        stdout.print("[green]Demo complete.[/green] Query the results in the warehouse, e.g. "
                     "select * from customer_features limit 10.")


# -- doctor -------------------------------------------------------------------------------

@command(app, "doctor")
def doctor(inv: Invocation):
    """Check the set-up (packages, dbt project, profile, warehouse, dwml tables, manifest) and say what to fix."""
    from dwml_py.doctor import run_doctor

    report = run_doctor(inv.project_dir, inv.profiles_dir, inv.target)
    if inv.json:
        print_json(report)
    else:
        marks = {"ok": "[green]ok  [/green]", "warn": "[yellow]warn[/yellow]", "fail": "[red]FAIL[/red]"}
        for check in report["checks"]:
            from rich.markup import escape

            stdout.print(f"{marks[check['status']]} {escape(check['name'])}: {escape(check['detail'])}")
            if check["fix"] and check["status"] != "ok":
                stdout.print(f"       [yellow]fix:[/yellow] {escape(check['fix'])}")
    if not report["ok"]:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
