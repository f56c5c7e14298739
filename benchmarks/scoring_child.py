"""One batch-scoring run in a process of its own, so its peak memory (RSS) is its own.

    python -m benchmarks.scoring_child dwml|bare BATCH_SIZE

The project comes from the environment (model_setup.project_env). Prints one JSON line: seconds,
rows, peak_rss_mb (the process's maximum resident set) and base_rss_mb (after imports and loading
the model, before scoring).
"""

from __future__ import annotations

import json
import resource
import sys
import time

from benchmarks.common import status_mb


def _peak_rss_mb() -> float:
    # VmHWM, the peak RSS of this address space: getrusage's ru_maxrss is carried over from the
    # parent across fork + exec on Linux, so it would report the harness's own peak.
    return status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str]) -> dict:
    mode, batch_size = argv[0], int(argv[1])
    from sqlglot import exp

    from benchmarks import data
    from benchmarks.bare_scoring import BareScorer
    from benchmarks.model_setup import DEMO_DIR, MODEL_NAME
    from dwml_py import model_registry as registry
    from dwml_py import sql as sqlmod
    from dwml_py.artifacts import ArtifactStore
    from dwml_py.batch_scoring import predict
    from dwml_py.project import Project
    from dwml_py.training import TrainedModel
    from dwml_py.warehouse import connect

    project = Project.locate(DEMO_DIR)
    with connect(project) as warehouse:
        row = registry.get_version(warehouse, MODEL_NAME, alias=None)
    model = TrainedModel.from_bytes(registry.load_model_bytes(ArtifactStore.for_project(project), row))
    base = status_mb("VmRSS")
    started = time.perf_counter()
    if mode == "dwml":
        result = predict(project, MODEL_NAME, version=int(row["version"]), relation="main.current",
                         batch_size=batch_size)
        rows = result["rows"]
    elif mode == "bare":
        scorer = BareScorer(model)
        columns = [data.ENTITY, *model.feature_names]
        query = exp.select(*[sqlmod.column(c) for c in columns]).from_(sqlmod.table("main", "current"))
        rows, total = 0, 0.0
        with connect(project, read_only=True) as warehouse:
            for batch in warehouse.fetch_batches(query, batch_size=batch_size):
                scores = scorer.predict(batch)
                rows += len(scores)
                total += float(scores.sum())
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    seconds = time.perf_counter() - started
    out = {"mode": mode, "seconds": seconds, "rows": rows, "peak_rss_mb": round(_peak_rss_mb(), 1),
           "base_rss_mb": round(base, 1)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
