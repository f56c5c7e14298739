"""Rendering of the set-up commands' results for people: `dwml init` (and the doctor's checks it ends with)."""

from __future__ import annotations

from rich.markup import escape

from dwml_py.console import stdout

_MARKS = {"ok": "[green]ok  [/green]", "warn": "[yellow]warn[/yellow]", "fail": "[red]FAIL[/red]"}
_ACTIONS = {"created": "[green]created [/green]", "appended": "[green]appended[/green]",
            "inserted": "[green]inserted[/green]", "unchanged": "[dim]unchanged[/dim]"}


def render_checks(checks: list[dict]) -> None:
    for check in checks:
        stdout.print(f"{_MARKS[check['status']]} {escape(check['name'])}: {escape(check['detail'])}")
        if check["fix"] and check["status"] != "ok":
            stdout.print(f"       [yellow]fix:[/yellow] {escape(check['fix'])}")


def render_init(result: dict) -> None:
    stdout.print(f"dwml {escape(result['version'])} in the dbt project {escape(result['project_dir'])}:")
    for change in result["changes"]:
        stdout.print(f"  {_ACTIONS.get(change['action'], change['action'])} {escape(change['file'])}: "
                     f"{escape(change['detail'])}")
    deps = result["deps"]
    if deps.get("ok"):
        stdout.print(f"  [green]dbt deps[/green] installed the project's packages ({deps['seconds']:.1f} s)")
    else:
        stdout.print(f"  [red]dbt deps[/red] {escape(deps.get('error', 'did not run'))}; "
                     f"[yellow]fix:[/yellow] {escape(deps.get('fix') or '')}")
    stdout.print("dwml doctor:")
    render_checks(result["doctor"]["checks"])
    if result["ok"]:
        stdout.print("Next: fill in the meta.dwml spec of your feature model, then `dbt build` and `dwml train NAME`.")
