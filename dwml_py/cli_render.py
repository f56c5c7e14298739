"""Human renderings of tool results for the CLI. `--json` prints the result object instead.

Tools without an entry here get console.render_result, a generic rendering.
"""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from dwml_py.console import stdout


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v, digits) for v in value)
    return str(value)


def _notes(result: dict) -> None:
    for note in result.get("notes") or []:
        stdout.print(f"[dim]note: {escape(str(note))}[/dim]")


def render_search(result: dict) -> None:
    if not result["hits"]:
        stdout.print(f"No match for {result['term']!r}.")
        _notes(result)
        return
    table = Table("match", "kind", "type", "owner", "pii", "tests", "matched on", "description", box=None, padding=(0, 1))
    for hit in result["hits"]:
        name = hit["name"] + (f".{hit['column']}" if hit["column"] else "")
        table.add_row(escape(name), hit["resource_type"] + (" column" if hit["column"] else ""), escape(_fmt(hit["type"])),
                      escape(_fmt(hit["owner"])), "PII" if hit["pii"] else "", str(len(hit["tests"])),
                      escape(_fmt(hit["matched"])), escape((hit["description"] or "")[:60]))
    stdout.print(table)
    stdout.print(f"{result['count']} hit(s) for {result['term']!r}.")
    _notes(result)


def render_node(result: dict) -> None:
    stdout.print(f"[bold]{escape(result.get('display_name') or result.get('name', ''))}[/bold] "
                 f"({result.get('resource_type')}) {escape(_fmt(result.get('relation')))}")
    for key in ("description", "owner", "classification", "materialized", "tags", "parents", "children"):
        if result.get(key):
            stdout.print(f"  {key}: {escape(_fmt(result[key]))}")
    columns = result.get("columns") or {}
    rows = columns.values() if isinstance(columns, dict) else columns
    table = Table("column", "type", "pii", "tests", "description", box=None, padding=(0, 1))
    for col in rows:
        tests = col.get("tests") or []
        table.add_row(escape(col["name"]), escape(_fmt(col.get("type"))), "PII" if col.get("pii") else "",
                      escape(_fmt([t["name"] if isinstance(t, dict) else t for t in tests])),
                      escape((col.get("description") or "")[:70]))
    stdout.print(table)
    if result.get("lineage_unavailable"):
        stdout.print(f"[yellow]lineage unavailable:[/yellow] {escape(result['lineage_unavailable'])}")
    _notes(result)


def render_lineage(result: dict) -> None:
    flag = " [red]PII[/red]" if result["pii"] else (" [yellow]derived from PII[/yellow]" if result["derived_from_pii"] else "")
    stdout.print(f"[bold]{escape(result['model'])}.{escape(result['column'])}[/bold]{flag}")
    from rich.tree import Tree

    for title, rows in (("upstream", result["upstream"]), ("downstream", result["downstream"])):
        if not rows:
            stdout.print(f"{title}: none")
            continue
        # Each row carries its path from the column; hang it under its predecessor on that path.
        tree = Tree(title)
        branches = {}
        for row in sorted(rows, key=lambda r: r.get("depth", 1)):
            path = row.get("path") or []
            parent = branches.get(path[-2], tree) if len(path) >= 2 else tree
            pii = " [red]PII[/red]" if row["pii"] else ""
            label = f"{escape(row['name'])}.{escape(row['column'])}{pii}"
            branches[path[-1] if path else label] = parent.add(label)
        stdout.print(tree)
    for node, reason in (result.get("unavailable") or {}).items():
        stdout.print(f"[yellow]lineage unavailable for {escape(node)}:[/yellow] {escape(reason)}")
    _notes(result)


def render_profile(result: dict) -> None:
    stdout.print(f"[bold]{escape(result['relation'])}[/bold]: {result['row_count']:,} rows, profiled "
                 f"{escape(result['profiled_at'])} in {result.get('queries', '?')} queries")
    if result.get("entity_key"):
        stdout.print(f"  duplicated keys on ({', '.join(result['entity_key'])}): {result['duplicate_keys']:,}")
    table = Table("column", "type", "nulls", "distinct", "min", "max", "mean", "std", "top values", box=None,
                  padding=(0, 1))
    for col in result["columns"]:
        top = ", ".join(f"{t['value']} ({t['count']:,})" for t in (col.get("top_values") or [])[:3])
        table.add_row(escape(col["name"]), escape(_fmt(col["data_type"])), f"{(col.get('null_rate') or 0):.1%}",
                      _fmt(col.get("distinct_count")), escape(_fmt(col.get("min_value"))[:19]),
                      escape(_fmt(col.get("max_value"))[:19]), _fmt(col.get("mean")), _fmt(col.get("std")),
                      escape(top[:50]))
    stdout.print(table)
    if result.get("stored_rows"):
        stdout.print(f"[dim]stored in dwml.table_profiles (profile_id {result['profile_id']})[/dim]")


RENDERERS = {
    "search_catalog": render_search,
    "show_catalog_node": render_node,
    "catalog_lineage": render_lineage,
    "get_feature_stats": render_profile,
}
