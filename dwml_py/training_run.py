"""One gated training run, end to end: `dwml train NAME`.

    gates (quality, governance, cost) -> training set (point-in-time, fingerprinted in the
    warehouse) -> time split -> fit -> holdout metrics -> artifact (sha256) -> run finished
    with its model version and the version's reference profile, in one transaction.

Any failure, a refused gate included, leaves the run recorded as failed with its error and no
model version. The pieces live in their own modules (quality, governance, cost_estimate,
training_set, training, reference_profile, tracking, model_registry); this one only orders them.
"""

from __future__ import annotations

import json
import time

from dwml_py.catalog import Catalog
from dwml_py.errors import GateRefused, InputError
from dwml_py.progress import SILENT, Progress
from dwml_py.tables import DWML_SCHEMA, ensure_tables
from dwml_py.rows import table_rows, utcnow

GATES = ("quality", "governance", "cost")
MODEL_ARTIFACT = "model.zip"
MODEL_FORMAT = "dwml-model-zip"


def _gate_summary(result: dict) -> dict:
    summary = {"passed": result.get("passed"), "decision": result.get("decision"),
               "audit_event_id": result.get("audit_event_id")}
    if result.get("estimate"):
        summary["estimate"] = {k: result["estimate"].get(k) for k in ("predicted_seconds", "predicted_peak_mb")}
    return summary


def _refusal(gate: str, result: dict) -> str:
    if gate == "quality":
        failing = [f"{c['check']}: {c['detail']}" for c in result.get("checks", []) if not c.get("passed")]
    elif gate == "governance":
        failing = [f"{v['rule']} ({v.get('column') or 'model'}): {v['detail']}" for v in result.get("violations", [])]
    else:
        failing = list(result.get("reasons", []))
    return f"the {gate} gate refused: " + "; ".join(failing[:5]) + (" ..." if len(failing) > 5 else "")


def run_gates(project, spec, warehouse, override: list[str], reason: str | None, progress: Progress,
              algorithm: str, params: dict | None = None, catalog=None) -> dict:
    """Run the three gates; raise GateRefused naming every refusal (after all have run)."""
    from dwml_py.governance import governance_gate
    from dwml_py.quality import quality_gate

    feature_model = spec.feature_table
    results: dict[str, dict] = {}
    with progress.step(f"Quality gate on {feature_model} (dbt tests + profile thresholds)") as step:
        results["quality"] = quality_gate(project, feature_model, override="quality" in override,
                                          reason=reason if "quality" in override else None, warehouse=warehouse)
        step.summary = results["quality"]["decision"]
    with progress.step(f"Governance gate on {len(spec.features)} features") as step:
        results["governance"] = governance_gate(project, feature_model, columns=spec.features, warehouse=warehouse,
                                                catalog=catalog)
        step.summary = results["governance"]["decision"]
    if not (results["quality"].get("passed") and results["governance"].get("passed")):
        # No cost estimate for a run that is refused anyway (its data may not even exist).
        results["cost"] = {"passed": True, "decision": "skipped", "reasons": ["an earlier gate refused"],
                           "estimate": None, "audit_event_id": None}
    else:
        with progress.step("Cost gate (estimated time and memory against the budget)") as step:
            results["cost"] = cost_gate_for(project, spec, warehouse, algorithm, override="cost" in override,
                                            reason=reason, params=params)
            estimate = results["cost"]["estimate"]
            step.summary = results["cost"]["decision"] + (
                f": {'at most' if estimate.get('upper_bound') else 'about'} {estimate['predicted_seconds']:.0f} s, "
                f"{estimate['predicted_peak_mb']:.0f} MB" if estimate else " (no budget configured)")
    refused = [g for g in GATES if not results[g].get("passed")]
    if refused:
        raise GateRefused(
            "Training refused: " + " | ".join(_refusal(g, results[g]) for g in refused),
            hint="fix what the gates name (`dwml check`, `dwml governance`, `dwml estimate` show the details); "
            "quality and cost may be overridden with --override GATE --reason TEXT, which is recorded.",
        )
    return results


def cost_gate_for(project, spec, warehouse, algorithm: str, override: bool, reason: str | None,
                  progress: Progress = SILENT, params: dict | None = None) -> dict:
    """Estimate the run's time and memory and compare them with the project's budget
    (`vars: dwml: cost:`). With no budget configured nothing is estimated: the gate passes and
    says so, which keeps unbudgeted runs from paying for calibration fits."""
    from dwml_py.audit import record_event
    from dwml_py.cost_estimate import cost_budget, cost_gate, estimate_training_cost

    budget = cost_budget(project.config)
    if budget["max_seconds"] is None and budget["max_memory_mb"] is None:
        return {"passed": True, "decision": "pass", "reasons": ["no budget configured (vars: dwml: cost:)"],
                "estimate": None, "budget": budget, "audit_event_id": None}
    # the run's own parameters (1,000 trees cost more than the default 300), bounded from one
    # small fit when that already fits the budget (see cost_estimate)
    estimate = estimate_training_cost(warehouse, spec, algorithm, params=params, budget=budget)
    verdict = cost_gate(estimate, project_config=project.config)
    passed = bool(verdict["passed"])
    decision = "pass" if passed else ("overridden" if override else "fail")
    reasons = list(verdict["reasons"]) + ([{"override_reason": reason}] if override and not passed else [])
    event = record_event(warehouse, "gate.cost", decision, object_type="model", object_name=spec.model_name,
                         reasons=reasons, details={"estimate": estimate, "budget": budget})
    return {"passed": passed or override, "decision": decision, "reasons": verdict["reasons"],
            "estimate": estimate, "budget": budget, "audit_event_id": event}


def _check_overrides(override: list[str], reason: str | None) -> list[str]:
    unknown = [g for g in override if g not in ("quality", "cost")]
    if unknown:
        raise InputError(f"--override takes quality or cost, got {unknown[0]!r}.",
                         hint="governance cannot be overridden from the command line: grant an exception with a "
                         "reason in the feature model's meta.dwml.governance.exceptions.")
    if override and not (reason and reason.strip()):
        raise InputError("--override needs --reason: an override is recorded in the audit log with why.",
                         hint="e.g. --override quality --reason 'null spike is a known backfill, ticket DATA-123'")
    return list(dict.fromkeys(override))


def train(project, name: str, algorithm: str = "xgboost", params: dict | None = None, seed: int = 0,
          holdout_fraction: float = 0.2, split_method: str | None = None, override: list[str] | None = None,
          reason: str | None = None, progress: Progress = SILENT, out_of_core: bool | None = None,
          batch_rows: int | None = None, **spec_overrides) -> dict:
    """A gated, tracked, registered training run; returns the run, the version and the metrics.

    `out_of_core` None streams the training set in batches (dwml_py.out_of_core) when its
    estimated in-memory peak exceeds `vars: dwml: training: max_in_memory_mb`; True forces that,
    False forbids it. `batch_rows` overrides `vars: dwml: training: batch_rows`.
    """
    from dwml_py import out_of_core as ooc
    from dwml_py.reference_profile import profile_sample, reference_profile
    from dwml_py.tracking import start_run
    from dwml_py.training import evaluate, fit
    from dwml_py.training_set import build_training_query, fetch_training_table, fingerprint, resolve_spec, split
    from dwml_py.warehouse import connect

    override = _check_overrides(list(override or []), reason)
    ooc.check_out_of_core(algorithm, out_of_core)
    settings = ooc.training_settings(project.config)
    batch_rows = int(batch_rows or settings["batch_rows"])
    if not 0 < holdout_fraction < 1:
        raise InputError(f"holdout_fraction must be between 0 and 1, got {holdout_fraction}.", hint="e.g. 0.2")
    durations: dict[str, float] = {}

    with connect(project) as warehouse:
        with progress.step("Reading the dbt catalog") as step:
            # Columns come from the warehouse: no `dbt docs generate`. Only a missing or stale
            # manifest runs `dbt parse`; the spec is checked before any other dbt command.
            catalog = Catalog.load(project, refresh=True, warehouse=warehouse)
            # an unbuilt feature model is the quality gate's to refuse (it names the failing tests upstream)
            spec = resolve_spec(catalog, name, require_built=False,
                                **{k: v for k, v in spec_overrides.items() if v is not None})
            step.summary = f"{spec.model_name}: {spec.task}, {len(spec.features)} features from {spec.feature_table}"
        invocation_id = catalog.metadata.get("invocation_id")  # the dbt invocation that wrote the manifest
        ensure_tables(warehouse)
        run = start_run(experiment=name, model_name=name, project=project, warehouse=warehouse,
                        params={"algorithm": algorithm, "seed": seed, "holdout_fraction": holdout_fraction,
                                "split_method": split_method, **(params or {})})
        with run:
            run.set(feature_model=spec.feature_model, label=f"{spec.label_table}.{spec.label_column}",
                    task=spec.task, algorithm=algorithm, seed=seed,
                    manifest_checksum=spec.feature_checksum, dbt_invocation_id=invocation_id)
            started = time.perf_counter()
            gates = run_gates(project, spec, warehouse, override, reason, progress, algorithm, params, catalog=catalog)
            durations["gates"] = time.perf_counter() - started
            for model in {spec.feature_model, spec.label_model}:  # an overridden gate may let an unbuilt one through
                catalog.require_built(catalog.node(model))
            run.set(gates={g: _gate_summary(r) for g, r in gates.items()})

            started = time.perf_counter()
            with progress.step("Building the training set in the warehouse (point-in-time join)") as step:
                query = build_training_query(spec, warehouse.dialect, asof_join=warehouse.capabilities.asof_join)
                fp = fingerprint(warehouse, query)
                mode = ooc.choose_mode(warehouse, query, int(fp["row_count"]), algorithm, out_of_core,
                                       settings["max_in_memory_mb"])
                if mode["out_of_core"]:
                    mode["batch_rows"] = batch_rows
                    streamed = ooc.StreamedTrainingSet.plan(warehouse, query, spec, method=split_method,
                                                            holdout_fraction=holdout_fraction, seed=seed,
                                                            batch_rows=batch_rows)
                    split_info = streamed.split_info
                else:
                    table = fetch_training_table(warehouse, query, batch_size=batch_rows)
                    train_rows, holdout_rows, split_info = split(table, spec, method=split_method,
                                                                 holdout_fraction=holdout_fraction, seed=seed)
                    del table  # the split's copies are what the rest needs
                step.summary = (f"{fp['row_count']:,} rows, fingerprint {fp['hash']}; {split_info['method']} split: "
                                f"{split_info['train_rows']:,} train / {split_info['holdout_rows']:,} holdout; "
                                + (f"streamed in batches of {batch_rows:,} rows" if mode["out_of_core"]
                                   else "in memory")
                                + f" (estimated in-memory peak {mode['estimated_peak_mb']:,.0f} MB, budget "
                                f"{mode['max_in_memory_mb']:,.0f} MB)")
            run.set(data_fingerprint=fp["hash"], row_count=int(fp["row_count"]))
            run.log_params({"split": {k: v for k, v in split_info.items() if k != "class_balance"},
                            "training_mode": mode})
            durations["training_set"] = time.perf_counter() - started

            started = time.perf_counter()
            if mode["out_of_core"]:  # reports its own steps; the sample stands in for train_rows below
                model, train_rows = ooc.fit_streamed(streamed, spec, algorithm, params, seed=seed, progress=progress)
            else:
                model = fit(train_rows, spec, algorithm, params, seed=seed, progress=progress)
            run.set(features=model.feature_schema())  # what scoring will expect, stored with the version
            durations["fit"] = time.perf_counter() - started

            started = time.perf_counter()
            with progress.step("Evaluating on the holdout") as step:
                if mode["out_of_core"]:
                    evaluation = ooc.evaluate_streamed(model, streamed)
                    mode.update(passes=streamed.passes, queries=streamed.queries)
                    streamed.close()  # the spill file
                else:
                    evaluation = evaluate(model, holdout_rows)
                metrics = {k: v for k, v in evaluation["metrics"].items() if isinstance(v, (int, float))}
                run.log_metrics(metrics, split="holdout")
                shown = ("roc_auc", "pr_auc", "log_loss", "f1") if spec.task == "classification" else ("rmse", "mae", "r2")
                step.summary = ", ".join(f"{k} {metrics[k]:.4f}" for k in shown if k in metrics)
            durations["evaluate"] = time.perf_counter() - started

            started = time.perf_counter()
            with progress.step("Storing the artifact and the reference profile") as step:
                artifact = run.log_artifact(model.to_bytes(), name=MODEL_ARTIFACT, artifact_format=MODEL_FORMAT)
                if not mode["out_of_core"]:  # (the streamed path returned its profile sample already)
                    train_rows = profile_sample(train_rows)
                profile_rows = reference_profile(train_rows, model, model.predict_score(train_rows))
                run.on_finish(_reference_writer(name, profile_rows))
                run.register(name, artifact=MODEL_ARTIFACT, description=f"{algorithm} on {spec.feature_table}",
                             spec=model.spec)
                step.summary = f"sha256 {artifact.sha256[:12]}..., {len(profile_rows)} reference rows" + (
                    f" (profiled on a sample of {train_rows.num_rows:,} training rows)"
                    if train_rows.num_rows < split_info["train_rows"] else "")
            durations["store"] = time.perf_counter() - started
            run.set(durations={k: round(v, 3) for k, v in durations.items()})
        version = run.version or {}

    progress.info(f"Registered {name} version {version.get('version')} (run {run.run_id}).")
    return {
        "model_name": name, "version": version.get("version"), "run_id": run.run_id, "status": run.status,
        "algorithm": algorithm, "task": spec.task, "feature_model": spec.feature_table,
        "features": list(spec.features), "data_fingerprint": fp, "split": split_info,
        "metrics": metrics, "calibration": evaluation.get("calibration"),
        "gates": {g: _gate_summary(r) for g, r in gates.items()},
        "artifact": {"uri": artifact.uri, "sha256": artifact.sha256, "size": artifact.size},
        "durations": {k: round(v, 3) for k, v in durations.items()},
        "training_mode": {**mode, "profile_rows": int(train_rows.num_rows)},
    }


def _reference_writer(model_name: str, rows: list[dict]):
    """Write the version's reference profile in the run's finishing transaction."""

    def write(warehouse, version_row):
        if version_row is None:
            return
        computed_at = utcnow()
        full = [{**row, "model_name": model_name, "version": version_row["version"], "computed_at": computed_at}
                for row in rows]
        for row in full:
            for key in ("bin_edges", "bin_counts", "categories"):
                if row.get(key) is not None and not isinstance(row[key], str):
                    row[key] = json.dumps(row[key])
        warehouse.write_arrow(table_rows("reference_profiles", full), DWML_SCHEMA, "reference_profiles")

    return write
