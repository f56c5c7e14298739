"""The `dwml` command's entry point. `dwml --version` answers here, before the CLI is built: building
it imports typer, rich and the tool registry, which costs more than the answer."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from dwml_py.versions import __version__

        print(f"dwml {__version__}")
        return
    from dwml_py.cli import main as run_cli

    run_cli()
