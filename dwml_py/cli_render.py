"""Human renderings of tool results for the CLI. `--json` prints the result object instead.

Tools without an entry here get console.render_result, a generic rendering.
"""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from dwml_py.cli_render_parts import (RENDERERS, _add, _audit, _count, _cut, _fmt, _grid, _hint,  # noqa: F401
                                      _metric_summary, _more, _notes, _pairs, _short_id, _status, _verdict, _when)
from dwml_py.console import stdout


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
    total = result.get("total", result["count"])
    if total > result["count"]:
        stdout.print(f"{result['count']} of {total:,} hits for {escape(repr(result['term']))}; --limit "
                     f"{min(total, max(2 * result['count'], 50))} (or --limit 0 for all) shows more.")
    else:
        stdout.print(f"{total} hit{'' if total == 1 else 's'} for {escape(repr(result['term']))}.")
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

    unknown = result.get("downstream_unknown") or []
    reasons = result.get("unavailable") or {}
    why = ("not compiled" if all("no compiled SQL" in str(reasons.get(u, "no compiled SQL")) for u in unknown)
           else "with unknown lineage")
    for title, rows in (("upstream", result["upstream"]), ("downstream", result["downstream"])):
        if not rows:
            # no known uses is not "none" when some children's lineage is unknown (e.g. not compiled)
            stdout.print(f"{title}: unknown ({len(unknown)} {'child' if len(unknown) == 1 else 'children'} {why})"
                         if title == "downstream" and unknown else f"{title}: none")
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


# -- shared helpers of the renderers below -------------------------------------------------------


# -- gates ---------------------------------------------------------------------------------------

def render_quality_gate(result: dict) -> None:
    checks = result.get("checks") or []
    failed = [c for c in checks if not c.get("passed")]
    relation = f" ({escape(_fmt(result.get('relation')))})" if result.get("relation") else ""
    summary = (f"{len(failed)} of {len(checks)} check(s) failed" if failed else f"{len(checks)} check(s) passed")
    stdout.print(f"Quality gate {_verdict(result)} for [bold]{escape(_fmt(result.get('model')))}[/bold]{relation}: "
                 f"{summary}")
    override = result.get("override") or {}
    if override.get("applied"):
        stdout.print(f"  [yellow]overridden, reason:[/yellow] {escape(_fmt(override.get('reason')))}")
    elif override.get("requested"):
        stdout.print("  [dim]override requested but not needed: the gate passed.[/dim]")
    for check in failed:
        column = f" ({escape(str(check['column']))})" if check.get("column") else ""
        stdout.print(f"  [red]FAIL[/red] [bold]{escape(_fmt(check.get('check')))}[/bold]{column}: "
                     f"{escape(_fmt(check.get('detail')))}")
        _hint(check.get("hint"))
    for check in checks:
        if check.get("passed"):
            mark = "[dim]skip[/dim]" if check.get("skipped") else "[green]ok[/green]  "
            stdout.print(f"  {mark} {escape(_fmt(check.get('check')))}: {escape(_cut(check.get('detail'), 110))}")

    tests = result.get("dbt_tests") or {}
    bad = [*(tests.get("failed") or []), *(tests.get("skipped") or [])]
    for t in bad[:20]:  # one line each: the test's name is what to look up, so it is never cut
        where = " on ".join(escape(str(x)) for x in (t.get("column"), t.get("model")) if x)
        failures = t.get("failures")
        rows = f", {_count(failures)} failing row(s)" if isinstance(failures, int) and failures else ""
        message = f": {escape(_cut(t.get('message'), 80))}" if t.get("message") else ""
        stdout.print(f"    dbt test [bold]{escape(_fmt(t.get('name')))}[/bold]" + (f" ({where})" if where else "")
                     + f" [red]{escape(_fmt(t.get('status')))}[/red]{rows}{message}")
    _more(min(len(bad), 20), len(bad), "dbt test(s)")
    if tests.get("warned"):
        names = ", ".join(str(t.get("name")) for t in tests["warned"][:5])
        stdout.print(f"  [yellow]{len(tests['warned'])} dbt test(s) warned:[/yellow] {escape(_cut(names, 100))}")
    if tests:
        why = f" ({escape(_cut(tests.get('why'), 70))})" if tests.get("why") else ""
        split = (f", {_count(tests['reused'])} reused and {_count(tests.get('ran'))} run"
                 if tests.get("reused") else "")
        stdout.print(f"[dim]dbt tests: {_count(tests.get('tests'))} from {escape(_fmt(tests.get('source')))}{split}{why}; "
                     f"rows: {_count(result.get('row_count'))}[/dim]")
    _audit(result)
    _notes(result)


def render_governance_gate(result: dict) -> None:
    violations = result.get("violations") or []
    columns = result.get("columns") or []
    relation = f" ({escape(_fmt(result.get('relation')))})" if result.get("relation") else ""
    owner = f", owner {escape(_fmt(result.get('owner')))}" if result.get("owner") else ""
    summary = f"{len(violations)} violation(s)" if violations else "no violations"
    stdout.print(f"Governance gate {_verdict(result)} for [bold]{escape(_fmt(result.get('model')))}[/bold]{relation}"
                 f"{owner}: {summary}, {len(columns)} column(s) checked")
    for v in violations:
        column = f" ({escape(str(v['column']))})" if v.get("column") else ""
        stdout.print(f"  [red]FAIL[/red] [bold]{escape(_fmt(v.get('rule')))}[/bold]{column}: {escape(_fmt(v.get('detail')))}")
        _hint(v.get("hint"))
    flagged = [c for c in columns if c.get("pii") or c.get("classification") not in (None, "internal", "public")]
    if flagged:
        table = _grid("column", "type", "classification", "PII found by", "PII type", "evidence",
                      keep=("column", "classification"))
        for c in flagged:
            evidence = "; ".join(str(e.get("detail")) for e in (c.get("evidence") or []) if isinstance(e, dict))
            pii = f"[red]{escape(_fmt(c.get('routes')))}[/red]" if c.get("pii") else ""
            _add(table, escape(_fmt(c.get("column"))), escape(_cut(c.get("data_type"), 14)),
                          escape(_fmt(c.get("classification"))), pii, escape(_fmt(c.get("pii_types"))),
                          escape(_cut(evidence, 45)))
        stdout.print(table)
    others = len(columns) - len(flagged)
    if others:
        stdout.print(f"  {others} other column(s): no PII found, internal or public.")
    for e in result.get("exceptions_used") or []:
        stdout.print(f"  [yellow]exception used[/yellow] for {escape(_fmt(e.get('column')))} "
                     f"(waives {escape(_fmt(e.get('rules_waived')))}): {escape(_cut(e.get('reason'), 100))}")
    _audit(result)
    _notes(result)


# -- features ------------------------------------------------------------------------------------

def render_suggestions(result: dict) -> None:
    target = result.get("target") or {}
    task = target.get("task")
    rate = target.get("positive_rate")
    extra = ", ".join(x for x in (escape(_fmt(task)) if task else "",
                                  f"positive rate {rate:.1%}" if isinstance(rate, (int, float)) else "") if x)
    stdout.print(f"Features for [bold]{escape(_fmt(target.get('model')))}.{escape(_fmt(target.get('column')))}"
                 f"[/bold]" + (f" ({extra})" if extra else "")
                 + f", entity {escape(_fmt(result.get('entity')))}"
                 + (f", timestamp {escape(_fmt(result.get('timestamp')))}" if result.get("timestamp") else ""))
    sample = result.get("sample") or {}
    joined = result.get("joined") or []
    skipped = [j for j in joined if j.get("skipped")]
    stdout.print(f"[dim]scored on {_count(sample.get('rows'))} sampled row(s) (seed {_fmt(sample.get('seed'))}); "
                 f"{len(joined) - len(skipped)} relation(s) joined"
                 + (f", spec from {escape(_fmt(result.get('spec_from')))}" if result.get("spec_from") else "")
                 + "[/dim]")
    candidates = result.get("candidates") or []
    if candidates:
        regression = any(c.get("auc") is None and c.get("correlation") is not None for c in candidates)
        table = _grid("#", "column", "score", "corr" if regression else "AUC", "null", "tests", "warnings",
                      keep=("#", "column", "score", "AUC", "corr", "null", "tests"))
        for i, c in enumerate(candidates, 1):
            relevance = c.get("auc") if c.get("auc") is not None else c.get("correlation")
            null = c.get("null_rate")
            # "no dbt tests" is what tests=no says already
            warnings = [w for w in map(str, c.get("warnings") or []) if not w.startswith("no dbt tests")]
            _add(table, _fmt(c.get("rank") or i), escape(_cut(c.get("ref") or c.get("column"), 40)),
                 _fmt(c.get("score"), 3), _fmt(relevance, 3), f"{null:.0%}" if isinstance(null, (int, float)) else "",
                 "yes" if c.get("has_tests") else "[yellow]no[/yellow]",
                 f"[yellow]{escape(_cut('; '.join(warnings), 30))}[/yellow]")
        stdout.print(table)
        _more(len(candidates), result.get("candidates_total"), "candidate(s)", "raise --limit to see them")
    else:
        stdout.print("[yellow]No usable candidate column[/yellow]: every joinable column was excluded (see below).")
    excluded = result.get("excluded") or []
    if excluded:
        counts = result.get("flag_counts") or {}
        by_flag = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        stdout.print(f"[bold]Excluded[/bold] {len(excluded)} column(s)" + (f": {escape(by_flag)}" if by_flag else ""))
        shown = excluded[:15]
        table = _grid("column", "flags", "why", keep=("column", "flags"))
        for e in shown:
            flags = [f.get("flag") if isinstance(f, dict) else f for f in e.get("flags") or []]
            first = next((f.get("reason") for f in e.get("flags") or [] if isinstance(f, dict)), None)
            _add(table, escape(_cut(e.get("ref") or e.get("column"), 42)), f"[red]{escape(_fmt(flags))}[/red]",
                          escape(_cut(first, 60)))
        stdout.print(table)
        _more(len(shown), len(excluded), "excluded column(s)")
    for j in skipped:
        stdout.print(f"[yellow]not joined:[/yellow] {escape(_fmt(j.get('name')))}: {escape(_cut(j.get('skipped'), 100))}")
    _notes(result)


def render_pipeline(result: dict) -> None:
    target = result.get("target") or {}
    columns = result.get("columns") or []
    task = f" ({escape(_fmt(target.get('task')))})" if target.get("task") else ""
    stdout.print(f"Wrote feature model [bold]{escape(_fmt(result.get('name')))}[/bold]: {len(columns)} column(s) for "
                 f"{escape(_fmt(target.get('model')))}.{escape(_fmt(target.get('column')))}{task}, "
                 f"entity {escape(_fmt(result.get('entity')))}"
                 + (f", timestamp {escape(_fmt(result.get('timestamp')))}" if result.get("timestamp") else ""))
    for key in ("sql_path", "yml_path"):
        if result.get(key):
            stdout.print(f"  {key.split('_')[0]}: {escape(str(result[key]))}")
    if result.get("overwritten"):
        stdout.print(f"  [yellow]overwrote:[/yellow] {escape(_fmt(result['overwritten']))}")
    for warning in result.get("warnings") or []:
        stdout.print(f"  [bold yellow]warning:[/bold yellow] {escape(str(warning))}")
    if columns:
        table = _grid("column", "from", "join", "as of", keep=("column",))
        for c in columns:
            _add(table, escape(_fmt(c.get("name"))), escape(_cut(c.get("source"), 60)), escape(_fmt(c.get("join"))),
                          escape(_fmt(c.get("time_column"))))
        stdout.print(table)
    suggestion = result.get("suggestion") or {}
    if suggestion:
        stdout.print(f"[dim]columns chosen from suggest_features on {_count((suggestion.get('sample') or {}).get('rows'))} "
                     "sampled row(s)[/dim]")
    build = result.get("build")
    if build:
        ok = build.get("success")
        counts = ", ".join(f"{k} {v}" for k, v in (build.get("counts") or {}).items())
        verdict = "[bold green]PASSED[/bold green]" if ok else "[bold red]FAILED[/bold red]"
        command = " ".join(build["command"]) if isinstance(build.get("command"), list) else _fmt(build.get("command"))
        stdout.print(f"Build {verdict}: {escape(command)} ({escape(counts)}; {_fmt(build.get('seconds'))} s)")
        failed = build.get("failed") or []
        if failed:
            table = _grid("node", "type", "status", "message", keep=("node", "status"))
            for n in failed:
                _add(table, escape(_cut(n.get("name"), 50)), escape(_fmt(n.get("resource_type"))),
                              f"[red]{escape(_fmt(n.get('status')))}[/red]", escape(_cut(n.get("message"), 70)))
            stdout.print(table)
            _hint(f"fix the model or the data, then `dbt build --select {result.get('name')}`", indent="  ")
    elif result.get("next"):
        stdout.print(f"Next: [bold]{escape(str(result['next']))}[/bold]")
    _notes(result)


# -- runs ----------------------------------------------------------------------------------------

def render_runs(result: dict) -> None:
    runs = result.get("runs") or []
    filters = ", ".join(f"{k}={v}" for k, v in (result.get("filters") or {}).items() if v is not None and k != "limit")
    if result.get("marked_stale"):
        stdout.print(f"[yellow]marked {len(result['marked_stale'])} stale run(s) as failed:[/yellow] "
                     f"{escape(_fmt(result['marked_stale']))}")
    if not runs:
        stdout.print("No runs" + (f" matching {escape(filters)}" if filters else "") + ".")
        return
    # a value every run shares is said once, above the table, instead of filling a column
    shared = {key: runs[0].get(key) for key in ("experiment", "model_name")
              if len(runs) > 1 and runs[0].get(key) and all(r.get(key) == runs[0].get(key) for r in runs)}
    if shared:
        stdout.print(", ".join(f"{'model' if k == 'model_name' else k} [bold]{escape(str(v))}[/bold]"
                               for k, v in shared.items()))
    headers = ["run", "experiment", "model", "status", "started", "data", "metrics / error"]
    keys = ["run_id", "experiment", "model_name", "status", "started_at", "data_fingerprint", "metrics"]
    table = _grid(*(h for h, k in zip(headers, keys) if k not in shared), keep=("run", "status"))
    for r in runs:
        if r.get("error"):
            last = f"[red]{escape(_cut(r['error'], 40))}[/red]"
        else:
            last = escape(_metric_summary(r.get("metrics"), 3, 40))
        cells = {"run_id": escape(_short_id(r.get("run_id"))), "experiment": escape(_cut(r.get("experiment"), 20)),
                 "model_name": escape(_cut(r.get("model_name"), 20)),
                 "status": _status(r.get("status"), bool(r.get("stale"))),
                 "started_at": escape(_when(r.get("started_at"))[:16]),
                 "data_fingerprint": escape(_short_id(r.get("data_fingerprint"))), "metrics": last}
        _add(table, *(cells[k] for k in keys if k not in shared))
    stdout.print(table)
    stale = [r for r in runs if r.get("stale")]
    stdout.print(f"{result.get('count', len(runs))} run(s)" + (f" ({escape(filters)})" if filters else "")
                 + ", newest first. `dwml runs show RUN` shows one (an id prefix is enough).")
    if stale:
        stdout.print(f"[yellow]{len(stale)} run(s) still 'running' long after they started[/yellow] (their process was "
                     "likely killed).")
        _hint("`dwml runs list --mark-stale` records them as failed.", indent="  ")


def render_run(result: dict) -> None:
    stdout.print(f"Run [bold]{escape(_fmt(result.get('run_id')))}[/bold] {_status(result.get('status'))}")
    if result.get("error"):
        stdout.print(f"  [bold red]error:[/bold red] {escape(_cut(result['error'], 400))}")
    started, finished = result.get("started_at"), result.get("finished_at")
    span = escape(_when(started)) + (f" to {escape(_when(finished))}" if finished else "")
    try:
        from datetime import datetime

        seconds = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
        span += f" ({seconds:,.1f} s)"
    except (TypeError, ValueError):
        pass
    lines = [
        ("experiment", result.get("experiment")), ("model", result.get("model_name")), ("when", None),
        ("task", result.get("task")), ("algorithm", result.get("algorithm")),
        ("features", result.get("feature_model")), ("label", result.get("label")),
        ("data", " ".join(x for x in (
            f"fingerprint {result['data_fingerprint']}" if result.get("data_fingerprint") else "",
            f"{_count(result['row_count'])} rows" if result.get("row_count") is not None else "",
            f"seed {result['seed']}" if result.get("seed") is not None else "") if x)),
        ("dbt", " ".join(x for x in (
            f"invocation {result['dbt_invocation_id']}" if result.get("dbt_invocation_id") else "",
            f"manifest {_short_id(result['manifest_checksum'], 12)}" if result.get("manifest_checksum") else "") if x)),
        ("git", result.get("git_sha")), ("by", result.get("created_by")),
        ("gates", _pairs(result.get("gates"), 6, 100)), ("tags", _pairs(result.get("tags"), 6, 100)),
        ("durations", _pairs(result.get("durations"), 6, 100, digits=3)),
    ]
    for key, value in lines:
        if key == "when":
            stdout.print(f"  when: {span}")
        elif value not in (None, "", [], {}):
            stdout.print(f"  {key}: {escape(_cut(value, 110))}")
    versions = result.get("model_versions") or []
    if versions:
        stdout.print("  registered as: " + escape(", ".join(f"{v.get('model_name')} v{v.get('version')}" for v in versions)))
    metrics = result.get("latest_metrics") or {}
    params = result.get("params") or {}
    if metrics:
        table = Table("metric", "value", box=None, padding=(0, 1))
        for key, value in metrics.items():
            _add(table, escape(str(key)), _fmt(value, 6))
        stdout.print(table)
    if params:
        table = Table("param", "value", box=None, padding=(0, 1))
        for key, value in list(params.items())[:30]:
            _add(table, escape(str(key)), escape(_cut(value, 70)))
        stdout.print(table)
        _more(30, len(params), "param(s)")
    artifacts = result.get("artifacts") or []
    if artifacts:
        table = Table("artifact", "format", "bytes", "sha256", box=None, padding=(0, 1))
        for a in artifacts:
            _add(table, escape(_fmt(a.get("name"))), escape(_fmt(a.get("format"))), _count(a.get("size")),
                          escape(_short_id(a.get("sha256"), 12)))
        stdout.print(table)
    if result.get("package_versions"):
        stdout.print(f"[dim]packages: {escape(_pairs(result['package_versions'], 12, 140))}[/dim]")


def render_compare(result: dict) -> None:
    runs = result.get("runs") or []
    ids = [r.get("run_id") for r in runs] or list(result.get("run_ids") or [])
    differs = set(result.get("differs") or [])
    same_data = result.get("same_data")
    stdout.print(f"Comparing {len(ids)} run(s): "
                 + ("[green]same data[/green] (one data fingerprint)" if same_data else
                    "[yellow]different or unknown data[/yellow] (data fingerprints differ or are missing)")
                 + f"; {len(differs)} difference(s)")
    rows = [("status", [r.get("status") for r in runs], "status" in differs)]
    for group, prefix in (("fields", ""), ("params", "params."), ("metrics", "metrics.")):
        for key, values in (result.get(group) or {}).items():
            if group == "fields" and key == "status":
                continue
            if group != "fields" or prefix + key in differs:
                rows.append((("" if group == "fields" else prefix) + key, values, prefix + key in differs))
    same = [k for k, vals in (result.get("fields") or {}).items()
            if k not in differs and k != "status" and any(v is not None for v in vals)]
    cells = [[_cut(_count(values[i]), 24) if i < len(values) else "" for i in range(len(ids))]
             for _, values, _ in rows]
    # as many runs per table as fit the terminal, at most six (with the key column <= 7 columns)
    key_width = max([len(key) for key, _, _ in rows] + [0]) + 2
    run_widths = [max([len(row[i]) for row in cells] + [8]) + 2 for i in range(len(ids))]
    chunks, chunk, used = [], [], key_width
    for i, w in enumerate(run_widths):
        if chunk and (len(chunk) == 6 or used + w > stdout.width):
            chunks.append(chunk)
            chunk, used = [], key_width
        chunk.append(i)
        used += w
    chunks.append(chunk)
    for chunk in chunks:
        table = _grid("", *(escape(_short_id(ids[i])) for i in chunk), keep=("",))
        for (key, _, differ), row in zip(rows, cells):
            label = f"[yellow]{escape(key)}[/yellow]" if differ else escape(key)
            _add(table, label, *(escape(row[i]) for i in chunk))
        stdout.print(table)
    if same:
        fields = result.get("fields") or {}
        stdout.print(f"[dim]same in all: {escape(_cut(', '.join(f'{k}={_count(fields[k][0])}' for k in same), 160))}[/dim]")
    for r in runs:
        if r.get("error"):
            stdout.print(f"[red]{escape(_short_id(r.get('run_id')))} failed:[/red] {escape(_cut(r['error'], 120))}")
    stdout.print("[dim]highlighted rows differ between the runs[/dim]")


# -- models --------------------------------------------------------------------------------------

def _aliases(aliases) -> str:
    if isinstance(aliases, dict):
        return ", ".join(f"{k}→v{v}" for k, v in aliases.items())
    return _fmt(aliases)


def render_models(result: dict) -> None:
    models = result.get("models") or []
    if not models:
        stdout.print("No registered models. Register a finished run with `dwml models register RUN`.")
        return
    table = _grid("model", "latest", "aliases", "algorithm", "features", "metrics", "created",
                  keep=("model", "latest"))
    for m in models:
        _add(table, escape(_cut(m.get("model_name"), 30)),
             f"v{_fmt(m.get('latest_version'))} of {_count(m.get('versions'))}",
             f"[cyan]{escape(_cut(_aliases(m.get('aliases')), 28))}[/cyan]",
             escape(_cut(m.get("algorithm"), 16)), escape(_cut(m.get("feature_model"), 24)),
             escape(_metric_summary(m.get("latest_metrics"), 2, 30)), escape(_when(m.get("latest_created_at"))[:10]))
    stdout.print(table)
    stdout.print(f"{result.get('count', len(models))} model(s). `dwml models versions NAME` shows a model's history.")


def render_versions(result: dict) -> None:
    versions = result.get("versions") or []
    aliases = result.get("aliases") or {}
    stdout.print(f"[bold]{escape(_fmt(result.get('model_name')))}[/bold]: {result.get('count', len(versions))} "
                 f"version(s)" + (f"; aliases [cyan]{escape(_aliases(aliases))}[/cyan]" if aliases else "; no aliases"))
    if versions:
        odd = any(v.get("status") not in (None, "registered") for v in versions)  # else: no status column
        table = _grid("version", "aliases", *(["status"] if odd else []), "run", "metrics", "created", "by",
                      "description", keep=("version", "run"))
        for v in versions:
            status = v.get("status")
            status_cell = [escape(_fmt(status)) if status == "registered" else
                           f"[yellow]{escape(_fmt(status))}[/yellow]"] if odd else []
            _add(table, f"v{_fmt(v.get('version'))}", f"[cyan]{escape(_fmt(v.get('aliases')))}[/cyan]", *status_cell,
                 escape(_short_id(v.get("run_id"))), escape(_metric_summary(v.get("metrics"), 3, 40)),
                 escape(_when(v.get("created_at"))[:16]), escape(_cut(v.get("created_by"), 16)),
                 escape(_cut(v.get("description"), 40)))
        stdout.print(table)
    history = result.get("alias_history") or []
    if history:
        shown = history[-10:]
        table = _grid("alias moved", "alias", "version", "by", "reason", keep=("alias", "version"))
        for h in reversed(shown):  # newest first
            previous = h.get("previous_version")
            move = (f"v{previous} → " if previous is not None else "new → ") + f"v{_fmt(h.get('version'))}"
            _add(table, escape(_when(h.get("set_at"))[:16]), escape(_fmt(h.get("alias"))), escape(move),
                          escape(_cut(h.get("set_by"), 16)), escape(_cut(h.get("reason"), 50)))
        stdout.print(table)
        _more(len(shown), len(history), "alias move(s)")


def render_registered(result: dict) -> None:
    stdout.print(f"Registered [bold]{escape(_fmt(result.get('model_name')))}[/bold] version "
                 f"[bold]v{_fmt(result.get('version'))}[/bold] from run {escape(_fmt(result.get('run_id')))}")
    algorithm = " ".join(x for x in (_fmt(result.get("algorithm")),
                                     f"({result['task']})" if result.get("task") else "") if x)
    for key, value in (("algorithm", algorithm), ("features", result.get("feature_model")),
                       ("metrics", _metric_summary(result.get("metrics"), 6, 110)),
                       ("artifact", " ".join(x for x in (_fmt(result.get("artifact_format")),
                                                         f"sha256 {_short_id(result.get('artifact_sha256'), 12)}"
                                                         if result.get("artifact_sha256") else "") if x)),
                       ("description", _cut(result.get("description"), 110)),
                       ("aliases", _fmt(result.get("aliases")))):
        if value:
            stdout.print(f"  {key}: {escape(value)}")
    if result.get("status") and result.get("status") != "registered":
        stdout.print(f"  [yellow]status: {escape(_fmt(result['status']))}[/yellow]")
    stdout.print(f"[dim]`dwml models versions {escape(_fmt(result.get('model_name')))}` shows every version.[/dim]")


RENDERERS.update({
    "search_catalog": render_search,
    "show_catalog_node": render_node,
    "catalog_lineage": render_lineage,
    "get_feature_stats": render_profile,
    "check_data_quality": render_quality_gate,
    "check_governance": render_governance_gate,
    "suggest_features": render_suggestions,
    "create_feature_pipeline": render_pipeline,
    "list_runs": render_runs,
    "show_run": render_run,
    "compare_experiments": render_compare,
    "list_models": render_models,
    "get_model_versions": render_versions,
    "register_model": render_registered,
})


def render_train(result: dict) -> None:
    metrics = result.get("metrics") or {}
    shown = ("roc_auc", "pr_auc", "log_loss", "f1") if result.get("task") == "classification" else ("rmse", "mae", "r2")
    stdout.print(f"[green]Trained[/green] [bold]{escape(str(result.get('model_name')))}[/bold] version "
                 f"{result.get('version')} ({escape(str(result.get('algorithm')))}, {escape(str(result.get('task')))}) "
                 f"from {escape(str(result.get('feature_model')))}")
    stdout.print("  holdout: " + ", ".join(f"{k} {metrics[k]:.4f}" for k in shown if k in metrics))
    fp = result.get("data_fingerprint") or {}
    split = result.get("split") or {}
    how = (f"time split at {split.get('cut')}" if split.get("method") == "time"
           else f"{split.get('method')} split (seed {split.get('seed')})")
    stdout.print(f"  data: {fp.get('row_count', 0):,} rows, fingerprint {fp.get('hash')}; {how}: "
                 f"{split.get('train_rows', 0):,} train / {split.get('holdout_rows', 0):,} holdout")
    gates = result.get("gates") or {}
    stdout.print("  gates: " + ", ".join(f"{g} {r.get('decision')}" for g, r in gates.items()))
    stdout.print(f"  run {escape(str(result.get('run_id')))}; artifact sha256 "
                 f"{escape(str((result.get('artifact') or {}).get('sha256', ''))[:16])}...")


RENDERERS["train_model"] = render_train


def render_deploy(result: dict) -> None:
    name, alias = escape(str(result.get("model_name"))), escape(str(result.get("alias")))
    if not result.get("passed"):
        stdout.print(f"[red]Deploy REFUSED[/red] for {name} version {result.get('version')}: governance failed; "
                     f"{alias} not moved.")
        for v in (result.get("governance") or {}).get("violations") or []:
            stdout.print(f"  [red]{escape(str(v.get('rule')))}[/red] {escape(str(v.get('column') or ''))}: "
                         f"{escape(str(v.get('detail', '')))}")
            if v.get("hint"):
                stdout.print(f"      [yellow]hint:[/yellow] {escape(str(v['hint']))}")
        return
    moved = (f"from version {result.get('previous_version')} " if result.get("previous_version") else "")
    why = f" ({escape(str(result['reason']))})" if result.get("reason") else ""
    stdout.print(f"[green]Deployed[/green] {name}: {alias} moved {moved}to version {result.get('version')}{why}.")
    stdout.print(f"  governance {escape(str((result.get('governance') or {}).get('decision')))}; "
                 f"monitoring baseline: {result.get('reference_rows')} reference rows")
    sql = result.get("sql_scoring") or {}
    if sql:
        stdout.print(f"  SQL scoring ({escape(str(sql.get('dialect')))}): " + (
            f"available to dbt through dwml_predict ({sql.get('sql_chars') or 0:,} characters of SQL)"
            if sql.get("available") else f"[yellow]unavailable[/yellow]: {escape(str(sql.get('reason')))}"))
    if result.get("scaffold"):
        scaffold = result["scaffold"]
        stdout.print(f"  wrote {escape(scaffold['sql_path'])} and its yml; next: {escape(scaffold['next'])}")


def render_predict(result: dict) -> None:
    replaced = f", replacing {result['replaced_rows']:,} earlier rows of this batch" if result.get("replaced_rows") else ""
    stdout.print(f"Scored {result.get('rows', 0):,} rows of {escape(str(result.get('relation')))} with "
                 f"{escape(str(result.get('model_name')))} version {result.get('version')} in "
                 f"{result.get('seconds', 0):.1f} s{replaced}.")
    stdout.print(f"  written to dwml.predictions, batch_id {escape(str(result.get('batch_id')))}")


RENDERERS["deploy_model"] = render_deploy
RENDERERS["predict"] = render_predict


# Renderers of later tool families live in their own modules and add themselves to RENDERERS
# (dwml_py.cli_render_parts); importing them here registers them.
from dwml_py import cli_render_experiment, cli_render_monitor, cli_render_report, cli_render_status  # noqa: E402,F401
