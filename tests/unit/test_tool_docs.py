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


# -- the examples: from real runs (python -m dwml_py.tools.examples), kept in examples.json --------

def test_every_tool_has_an_example_from_the_generator():
    from dwml_py.tools import examples

    names = set(load_tools().names())
    planned = [step.tool for step in examples.PLAN]
    assert len(planned) == len(set(planned))
    assert set(planned) == names, ("add a Step for each new tool to dwml_py/tools/examples.py PLAN and rerun "
                                   "`python -m dwml_py.tools.examples`", sorted(names ^ set(planned)))
    assert set(docs.EXAMPLES) == names, sorted(names ^ set(docs.EXAMPLES))
    assert docs.EXAMPLES_COMMAND.startswith("python -m dwml_py.tools.examples")
    for name, page in docs.render().items():
        assert "Placeholder arguments" not in page and docs.NOT_DOCUMENTED not in page, name


def test_committed_examples_used_the_plans_arguments():
    from dwml_py.tools import examples

    for step in examples.PLAN:
        used = docs.EXAMPLES[step.tool]["args"]
        assert set(used) == set(step.args), step.tool
        for key, value in step.args.items():
            if not isinstance(value, examples.Ref) and not (isinstance(value, list) and
                                                             any(isinstance(v, examples.Ref) for v in value)):
                assert used[key] == value, (step.tool, key)


def test_committed_examples_hold_no_temporary_paths():
    text = docs.EXAMPLES_FILE.read_text(encoding="utf-8")
    assert "dwml-examples-" not in text and "/tmp/" not in text
    assert '"created_by": "ana"' in text  # DWML_ACTOR during the run, not the machine's user


def test_abridge_cuts_lists_objects_strings_and_rounds_numbers():
    from dwml_py.tools.examples import ELLIPSIS, Step, abridge

    step = Step("x", items=2, keys=2, text=10)
    result = {"a": 1, "b": 2, "c": 3,  # the top level keeps every key
              "nested": {"k1": 1, "k2": 2, "k3": 3},
              "rows": [1, 2, 3, 4], "short": [1, 2],
              "text": "0123456789abcdef", "path": "/tmp/xyz/project/target/x.html",
              "auc": 0.733215678, "rows_f": 10815.3, "p": 2.08812e-13, "zero": 0.0, "flag": True, "none": None}
    out = abridge(result, step, replace={"/tmp/xyz/project": "/path/to/project"})
    assert list(out)[:3] == ["a", "b", "c"]
    assert out["nested"] == {"k1": 1, "k2": 2, ELLIPSIS: ELLIPSIS}
    assert out["rows"] == [1, 2, ELLIPSIS] and out["short"] == [1, 2]
    assert out["text"] == "0123456789 ..."
    assert out["path"] == "/path/to/project/target/x.html"[:10] + " ..."
    assert out["auc"] == 0.7332 and out["rows_f"] == 10815.0 and out["p"] == 2.088e-13 and out["zero"] == 0.0
    assert out["flag"] is True and out["none"] is None
    wide = abridge({"path": "/tmp/xyz/project/a"}, Step("x"), replace={"/tmp/xyz/project": "/path/to/project"})
    assert wide == {"path": "/path/to/project/a"}


def test_plan_arguments_resolve_and_validate():
    from dwml_py.tools import examples

    saved = {"demo_run": "0a1b2c3d", "train_run": "1b2c3d4e", "experiment_run": "2c3d4e5f", "demo_auc": 0.7,
             "deploy_reason": "holdout ROC AUC 0.75 (version 1: 0.73)", "shift_start": "2025-08-01",
             "holdout_start": "2025-08-01"}
    tools = load_tools()
    for step in examples.PLAN:
        args = examples._resolve(step.args, saved)
        assert not any(isinstance(v, examples.Ref) for v in args.values())
        tools[step.tool].validate(args)  # raises InputError on a wrong name or type
    compare = next(s for s in examples.PLAN if s.tool == "compare_experiments")
    assert examples._resolve(compare.args, saved) == {"runs": ["0a1b2c3d", "1b2c3d4e"]}


def test_copy_project_takes_the_dbt_project_and_nothing_else(tmp_path, demo_dir, repo_root):
    import yaml

    from dwml_py.project import copy_project

    copied = copy_project(demo_dir, tmp_path / "project")
    assert (copied / "dbt_project.yml").is_file() and (copied / "profiles.yml").is_file()
    assert (copied / "models" / "features" / "customer_features.yml").is_file()
    assert (copied / "tests" / "assert_customer_features_grain.sql").is_file()
    for absent in ("warehouse.duckdb", "target", "artifacts", "logs"):
        assert not (copied / absent).exists(), absent
    # the package the demo installs by a relative path stays installed in the copy, without dbt deps
    assert yaml.safe_load((copied / "packages.yml").read_text()) == {"packages": [{"local": str(repo_root)}]}
    assert (copied / "dbt_packages" / "dwml").resolve() == repo_root

