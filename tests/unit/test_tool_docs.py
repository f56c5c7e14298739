"""docs/tools/ is generated from the registry: up to date, one page per tool, every parameter named."""

import typer.main

from dwml_py.tools import docs
from dwml_py.tools.registry import Param, Registry, load_tools


def test_committed_docs_are_up_to_date():
    assert docs.stale() == [], "run `python -m dwml_py.tools.docs` to regenerate docs/tools/"
    assert docs.main(["--check"]) == 0


def test_every_tool_has_a_page_and_an_index_row():
    pages = docs.render()
    index = pages["README.md"]
    for spec in load_tools():
        assert f"{spec.name}.md" in pages
        assert (docs.DOCS_DIR / f"{spec.name}.md").is_file()
        assert f"[{spec.name}]({spec.name}.md)" in index
        assert f"`dwml {' '.join(spec.cli)}`" in index
    assert set(pages) == {"README.md"} | {f"{s.name}.md" for s in load_tools()}


def test_each_page_names_every_parameter_and_its_flag():
    pages = docs.render()
    for spec in load_tools():
        page = pages[f"{spec.name}.md"]
        for p in spec.params:
            assert f"`{p.name}`" in page, (spec.name, p.name)
            if p.positional:
                assert p.name.upper() in page, (spec.name, p.name)
            else:
                assert docs.cli_flag(p) in page, (spec.name, p.name)
        for flag in ("--project-dir", "--profiles-dir", "--target", "--json", "--debug"):
            assert flag in page


def test_documented_flags_are_the_cli_flags():
    from dwml_py import cli

    root = typer.main.get_command(cli.app)
    for spec in load_tools():
        command = root
        for part in spec.cli:
            command = command.commands[part]
        options = {o for param in command.params if param.param_type_name == "option"
                   for o in param.opts + param.secondary_opts}
        for p in spec.params:
            if not p.positional:
                flag = docs.cli_flag(p)
                assert flag in options, (spec.name, flag)
                if docs._is_bool(p):
                    assert f"--no-{flag.lstrip('-')}" in options


def test_example_arguments_are_valid():
    for spec in load_tools():
        spec.validate(docs.example_args(spec))  # raises InputError on a wrong name or type
    assert set(docs.EXAMPLES) <= set(load_tools().names()), "EXAMPLES names a tool that is gone"


def test_a_tool_without_examples_still_gets_a_page(tmp_path):
    from typing import Annotated, Literal

    reg = Registry()

    @reg.tool("brand_new_tool", cli=("brand", "new"), read_only=False)
    def brand_new_tool(project, model: Annotated[str, Param("the model", positional=True)],
                       mode: Annotated[Literal["a", "b"], Param("the mode")],
                       tags: Annotated[list[str] | None, Param("tags", flag="--tag")] = None,
                       dry: Annotated[bool, Param("only show")] = True) -> dict:
        """Do something new.

        Longer text of the docstring."""
        return {}

    pages = docs.render(reg)
    page = pages["brand_new_tool.md"]
    assert docs.NOT_DOCUMENTED in page
    assert "Longer text of the docstring." in page
    assert "dwml brand new '<model>' --mode a --json" in page
    assert "api.brand_new_tool('<model>', 'a', project_dir=\".\")" in page
    assert "--tag TEXT" in page and "--dry / --no-dry" in page
    assert docs.stale(tmp_path, reg) == sorted(pages)
    docs.write(tmp_path, reg)
    assert docs.stale(tmp_path, reg) == []
    (tmp_path / "gone_tool.md").write_text("old")
    assert docs.stale(tmp_path, reg) == ["gone_tool.md"]
    docs.write(tmp_path, reg)
    assert not (tmp_path / "gone_tool.md").exists()
