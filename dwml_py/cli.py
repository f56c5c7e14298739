"""The `dwml` command line. It only parses, calls the library and renders.

Every command takes the common flags (--project-dir, --profiles-dir, --target, --json,
--debug). Known errors print one line and a hint and exit 1 (2 when a gate refused or an
alert fired); --debug shows the traceback.
"""

import functools
import inspect
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from dwml_py.versions import __version__
from dwml_py.console import ConsoleProgress, print_error, print_json, print_traceback, render_result, stdout
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
        own_hints = typing.get_type_hints(func, include_extras=True)
        own = [p.replace(annotation=own_hints.get(p.name, p.annotation)) for p in own]

        @functools.wraps(func)
        def wrapper(**values):
            inv = Invocation(values.pop("project_dir"), values.pop("profiles_dir"), values.pop("target"),
                             values.pop("json_output"), values.pop("debug"))
            try:
                func(inv, **values)
            except DwmlError as exc:
                if inv.debug:
                    print_traceback()
                if inv.json:
                    print_json(exc.to_dict())
                print_error(type(exc).__name__, exc.message, exc.hint)
                raise typer.Exit(exc.exit_code) from None
            except (typer.Exit, typer.Abort, KeyboardInterrupt):
                raise
            except Exception as exc:  # an unexpected failure: still one line unless --debug
                if inv.debug:
                    print_traceback()
                print_error(type(exc).__name__, f"unexpected {type(exc).__name__}: {exc}",
                            "rerun with --debug for the traceback, and please report it.")
                raise typer.Exit(1) from None

        wrapper.__signature__ = inspect.Signature(own + _COMMON)
        wrapper.__annotations__ = {p.name: p.annotation for p in own + _COMMON}
        wrapper.__dict__.pop("__wrapped__", None)  # typer must read the new signature, not the wrapped one
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


DirOpt = Annotated[Optional[Path], typer.Option("--dir", help="folder of the demo project: written there when it "
                                                "holds no dbt project yet (default: the checkout's demo/, or the "
                                                "working folder).", show_default=False)]


def _demo_project(inv: Invocation, directory: Optional[Path], config):
    """The demo project's folder (written first if needed) and the Project in it; the settings are
    checked first, so a refused one writes nothing."""
    from dwml_py.demo import check_config
    from dwml_py.demo.project_folder import demo_project_dir
    from dwml_py.project import Project

    check_config(config)
    folder = demo_project_dir(directory, inv.project_dir)
    return folder, Project.locate(folder, inv.profiles_dir, inv.target)


def _next_steps(folder: Path) -> str:
    """How to reach the demo's project from where the user is: `cd` there unless they are in it."""
    import os

    where = os.path.relpath(folder)
    return "" if where == "." else f"`cd {where}`, then "


@command(demo_app, "generate")
def demo_generate(inv: Invocation, customers: CustomersOpt = None, seed: SeedOpt = 42, months: MonthsOpt = None,
                  inject_defects: DefectsOpt = False, directory: DirOpt = None):
    """Generate the demo warehouse: raw tables of a subscription business (schema `raw`)."""
    from dwml_py.demo import generate_demo
    from dwml_py.demo.project_folder import working_directory

    config = _demo_config(customers, seed, months, inject_defects)
    folder, project = _demo_project(inv, directory, config)
    with working_directory(folder):
        result = generate_demo(project, config, inv.progress())
    if inv.json:
        print_json(result.to_dict())
    else:
        stdout.print(f"Wrote {sum(result.rows.values()):,} rows into schema raw of the demo project in {folder}. "
                     f"Next: {_next_steps(folder)}`dbt deps && dbt build`, or `dwml demo run`.")


@command(demo_app, "run")
def demo_run(inv: Invocation, customers: CustomersOpt = None, seed: SeedOpt = 42, months: MonthsOpt = None,
             inject_defects: DefectsOpt = False, directory: DirOpt = None):
    """The main job: generate the demo, build and test it with dbt, and run the ML flow on it."""
    from dwml_py.demo import run_demo
    from dwml_py.demo.project_folder import working_directory

    config = _demo_config(customers, seed, months, inject_defects)
    folder, project = _demo_project(inv, directory, config)
    progress = inv.progress()
    if not inv.json:
        progress.info(f"The demo project: {folder}")
    with working_directory(folder):
        result = run_demo(project, config, progress)
    if inv.json:
        print_json(result.to_dict())
    else:
        stdout.print("[green]Demo complete.[/green] Query the results in the warehouse, e.g. "
                     "select * from main.churn_scores limit 10 (scored by `dbt run`), select * from dwml.predictions limit 10; "
                     f"{_next_steps(folder)}`dwml status`, `dwml monitor`, `dwml report churn`.")


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


# -- init ---------------------------------------------------------------------------------

@command(app, "init")
def init(inv: Invocation,
         model: Annotated[Optional[str], typer.Option(
             "--model", help="a model of your project to get a commented meta.dwml example in its yml (the feature "
             "table of your first ML model).", show_default=False)] = None,
         git: Annotated[Optional[str], typer.Option(
             "--git", help="install dwml's dbt package from this git URL, pinned to the installed version's tag, "
             "instead of by local path.", show_default=False)] = None,
         revision: Annotated[Optional[str], typer.Option(
             "--revision", help="with --git: the revision to pin (default: v<installed version>).",
             show_default=False)] = None,
         subdirectory: Annotated[Optional[str], typer.Option(
             "--subdirectory", help="with --git: the folder of the repository that holds dwml's dbt_project.yml "
             "(none for dwml's own repository).", show_default=False)] = None):
    """Add dwml to an existing dbt project: packages.yml, .gitignore, a meta.dwml example; then dbt deps and doctor."""
    from dwml_py.project_init import init_project

    result = init_project(inv.project(), model=model, git=git, revision=revision, subdirectory=subdirectory,
                          progress=None if inv.json else inv.progress())
    if inv.json:
        print_json(result)
    else:
        from dwml_py.cli_render_setup import render_init

        render_init(result)
    if not result["ok"]:
        raise typer.Exit(1)


# -- agent server -------------------------------------------------------------------------

@command(app, "mcp")
def mcp_server(inv: Invocation, read_only: Annotated[bool, typer.Option(
        "--read-only", help="offer only the tools that change nothing")] = False):
    """Serve dwml's tools to agents over the Model Context Protocol (stdio)."""
    from dwml_py.mcp_server import serve_stdio

    inv.project()  # fail now, with the usual one-line error, if there is no project
    serve_stdio({"project_dir": inv.project_dir, "profiles_dir": inv.profiles_dir, "target": inv.target},
                read_only=read_only)


# -- REST server --------------------------------------------------------------------------

@command(app, "serve")
def serve(inv: Invocation,
          names: Annotated[Optional[list[str]], typer.Argument(
              help="models to serve (default: every model with the alias).", show_default=False)] = None,
          host: Annotated[str, typer.Option("--host", help="interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option("--port", help="port to listen on.")] = 8000,
          api_key_env: Annotated[Optional[str], typer.Option(
              "--api-key-env", help="environment variable holding the API key clients must send (X-API-Key or "
              "Authorization: Bearer).", show_default=False)] = None,
          alias: Annotated[str, typer.Option("--alias", help="the champion alias each model is served at.")]
          = "production",
          challenger: Annotated[Optional[str], typer.Option(
              "--challenger", help="alias or version number that scores --challenger-share of the traffic.",
              show_default=False)] = None,
          challenger_share: Annotated[float, typer.Option(
              "--challenger-share", help="share of rows for the challenger (by entity key hash, else random).")]
          = 0.0,
          seed: Annotated[int, typer.Option("--seed", help="seed of the random split for rows without a key.")] = 0,
          flush_rows: Annotated[int, typer.Option(
              "--flush-rows", help="write served predictions to dwml.predictions every N rows ...")] = 1000,
          flush_seconds: Annotated[float, typer.Option("--flush-seconds", help="... or every T seconds.")] = 5.0,
          max_body_bytes: Annotated[int, typer.Option(
              "--max-body-bytes", help="larger request bodies get 413.")] = 1_048_576,
          log_predictions: Annotated[bool, typer.Option(
              "--log-predictions/--no-log-predictions", help="write served predictions to dwml.predictions "
              "(then each row needs its entity key).")] = True):
    r"""Serve models over REST (FastAPI): predict, models, versions, health; needs `pip install "dwml-dbt\[serve]"`."""
    from dwml_py.serving import serve as run_server

    run_server(inv.project(), names or None, host=host, port=port, api_key_env=api_key_env, alias=alias,
               challenger=challenger, challenger_share=challenger_share, seed=seed, flush_rows=flush_rows,
               flush_seconds=flush_seconds, max_body_bytes=max_body_bytes, log_predictions=log_predictions)


# -- tools: every registered tool becomes a command ------------------------------------------

tools_app = typer.Typer(no_args_is_help=True, help="The tool registry behind the CLI, the Python API and the agent server.")
app.add_typer(tools_app, name="tools")


@command(tools_app, "list")
def tools_list(inv: Invocation):
    """List the registered tools with their commands and parameter schemas."""
    from dwml_py.tools.registry import load_tools

    described = [spec.describe() for spec in load_tools()]
    if inv.json:
        print_json({"tools": described})
        return
    table = Table("tool", "command", "read-only", "description", box=None)
    for tool in described:
        table.add_row(tool["name"], tool["command"], "yes" if tool["read_only"] else "no", tool["description"])
    stdout.print(table)


def _cli_annotation(param):
    """The typer annotation of a tool parameter: Literal becomes str (the registry validates it)."""
    from dwml_py.tools.registry import _unwrap_optional

    inner, _ = _unwrap_optional(param.annotation)
    if typing.get_origin(inner) is typing.Literal:
        inner = str
    if typing.get_origin(inner) in (list, tuple):
        inner = list[typing.get_args(inner)[0]]
    if param.positional:
        info = typer.Argument(help=param.help, show_default=False)
    else:
        flag = param.flag or "--" + param.name.replace("_", "-")
        if inner is bool:  # both spellings, so a default of True can be turned off
            flag = f"{flag}/--no-{flag.lstrip('-')}"
        info = typer.Option(flag, help=param.help, show_default=param.default not in (None, [], ()))
    return Annotated[inner if param.required else Optional[inner], info]


def _tool_command(spec):
    def run(inv: Invocation, **values):
        from dwml_py.cli_render import RENDERERS

        result = spec.call(inv.project(), progress=None if inv.json else inv.progress(), **values)
        if inv.json:
            print_json(result)
        else:
            RENDERERS.get(spec.name, render_result)(result)
        # a refusing gate or a firing alert exits 2 after the result is shown (the tool's declared verdict)
        status = spec.exit_status(result)
        if status:
            raise typer.Exit(status)

    parameters = [inspect.Parameter("inv", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for p in spec.params:
        default = inspect.Parameter.empty if p.required else p.default
        parameters.append(inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                            annotation=_cli_annotation(p)))
    run.__signature__ = inspect.Signature(parameters)
    run.__name__ = spec.name
    run.__doc__ = spec.description
    return run


def _group(root: typer.Typer, path: tuple[str, ...]) -> typer.Typer:
    """The typer (sub)app for a command path, creating groups on the way."""
    current = root
    for part in path:
        existing = next((g for g in current.registered_groups if g.name == part), None)
        if existing is None:
            sub = typer.Typer(no_args_is_help=True)
            current.add_typer(sub, name=part)
            current = sub
        else:
            current = existing.typer_instance
    return current


def register_tool_commands(registry, root: typer.Typer) -> None:
    """One command per tool of the registry, at the tool's CLI path."""
    for spec in registry:
        *groups, name = spec.cli
        command(_group(root, tuple(groups)), name, help=spec.description)(_tool_command(spec))


def _register_builtin_tools() -> None:
    from dwml_py.tools.registry import load_tools

    register_tool_commands(load_tools(), app)


_register_builtin_tools()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
