"""REST serving: `dwml serve [NAME...]`, a FastAPI app over the model registry.

Endpoints (JSON):

- `GET /health`: liveness and the prediction log's counters (no key needed, names no model).
- `GET /models`: the served models, the version each alias points at, champion and challenger.
- `GET /models/{name}/versions`: the registry's history of a served model.
- `POST /models/{name}/predict`: `{"rows": [{feature: value, ...}], "version": N | "alias": A}`
  returns one prediction per row (score, label, the version that scored, the entity key).
- `POST /reload`: re-read the aliases (after a `dwml deploy`) and load the versions they point at.

Decisions:

- **Models are loaded once**, at start: the champion alias (`production` unless told otherwise)
  and the challenger of each served model, artifacts sha256-checked. Aliases are not looked up per
  request (that would open the warehouse on every call, and on DuckDB contend for its one write
  lock); `POST /reload` re-reads them. A request naming another version or alias loads it once
  and keeps it (versions never change).
- **Rows are validated** against the scoring version's feature schema with a pydantic model built
  from it: numeric -> number or null, boolean -> true/false or null, categorical -> string or
  null; no coercion from strings to numbers or numbers to strings. Every feature must be present
  (null for a missing value, which the model handles as in training); fields that are neither a
  feature, the entity key nor the timestamp are refused, so a misspelt feature is never silently
  scored as missing. A category never seen in training is not an error: it is scored, as in batch
  scoring. When predictions are logged, the entity key field(s) are required. Any error is a 422
  whose body lists each row and field with what was wrong; nothing of that request is scored.
- **Champion/challenger**: `challenger` (an alias or a version number) scores `challenger_share`
  of the rows: chosen by a hash of the model name and the row's entity key when the row has one
  (an entity always gets the same version), else by a seeded random draw per request. Every
  prediction says which version scored it and in which role.
- **Predictions** go to dwml.predictions (source 'rest') through dwml_py.prediction_log: buffered,
  written in batches on short-lived connections, retried when the warehouse refuses (e.g. the
  DuckDB file is locked by a `dbt run`); scoring never waits for the warehouse. The few requests
  that read it (versions, reload, a version not loaded yet) wait DWML_LOCK_WAIT_SECONDS for a
  locked DuckDB file, then answer 503 with Retry-After; the server keeps no connection open.
- **Security**: an optional API key (header `X-API-Key` or `Authorization: Bearer KEY`), compared
  in constant time; every endpoint but /health needs it. Request bodies over `max_body_bytes` get
  413. Errors the client caused say what to fix; anything else is a 500 with an error id only,
  the detail goes to the server log.
"""

import contextlib
import hashlib
import hmac
import logging
import os
import random
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import pyarrow as pa

from dwml_py.errors import ConfigError, InputError, NotFoundError, WarehouseError, did_you_mean
from dwml_py.serving_http import (BodyLimit, CatchUnexpected, api_key_of, error_response, error_responses,
                                  internal_error)

DEFAULT_ALIAS = "production"
MAX_BODY_BYTES = 1_048_576

log = logging.getLogger("dwml.serving")


def require_serve_extra():
    """Import FastAPI and uvicorn, or say how to install them."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"`dwml serve` needs FastAPI and uvicorn, which are not installed ({exc.name} is missing).",
                          hint='pip install "dwml-dbt[serve]"') from exc


# -- loaded versions --------------------------------------------------------------------------------

@dataclass
class LoadedVersion:
    """One model version ready to score: its model and the pydantic model of a request row."""

    name: str
    version: int
    model: Any  # TrainedModel
    entity: list[str]
    timestamp: str | None
    row_schema: Any  # pydantic model class of one row

    @property
    def logs(self) -> bool:
        return bool(self.entity)


def row_schema(model, entity: list[str], timestamp: str | None, require_entity: bool):
    """The pydantic model of one request row for a version's feature schema (see the module doc).

    Python field names are f0, f1, ... with the column names as aliases, so any column name works.
    """
    from typing import Annotated, Optional, Union

    from pydantic import (AfterValidator, AllowInfNan, BeforeValidator, ConfigDict, Field, Strict, StrictBool,
                          StrictStr, create_model)

    kinds = {"numeric": Annotated[float, Strict(), AllowInfNan(False)], "boolean": StrictBool,
             "categorical": StrictStr}
    fields: dict[str, tuple] = {}
    taken = set()
    for i, feature in enumerate(model.features):
        fields[f"f{i}"] = (Optional[kinds[feature["kind"]]], Field(..., alias=feature["name"]))  # noqa: F821 - a key, not a type name
        taken.add(feature["name"])
    # keys are stored and hashed as 64-bit integers or text: a larger number is the client's error
    key_type = Union[Annotated[int, Strict(), Field(ge=KEY_MIN, le=KEY_MAX)], StrictStr]
    for i, column in enumerate(c for c in entity if c not in taken):
        fields[f"e{i}"] = (key_type, Field(..., alias=column)) if require_entity \
            else (Optional[key_type], Field(None, alias=column))
    if timestamp and timestamp not in taken and timestamp not in entity:
        # ISO text only (no epoch numbers), and it must stay a valid date once moved to UTC
        stamp = Annotated[Union[datetime, date], BeforeValidator(_iso_text), AfterValidator(_utc_in_range)]
        fields["ts"] = (Optional[stamp], Field(None, alias=timestamp))
    return create_model("Row", __config__=ConfigDict(extra="forbid"), **fields)


KEY_MIN, KEY_MAX = -(2**63), 2**63 - 1


def _iso_text(value):
    """The timestamp field takes ISO 8601 text: a number would be read as epoch seconds, which the
    API promises not to do (no coercion)."""
    if isinstance(value, (datetime, date)) or value is None:
        return value
    if not isinstance(value, str):
        raise ValueError("should be an ISO 8601 date or datetime as text (e.g. \"2024-03-01\"), not a "
                         f"{type(value).__name__}")
    return value


def _utc_in_range(value):
    try:
        return _as_timestamp(value)
    except (OverflowError, ValueError):
        raise ValueError("is outside the years 1-9999 once converted to UTC") from None


def _as_timestamp(value) -> datetime | None:
    """UTC without a zone, like every dwml timestamp."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def _version_spec(value: str | int | None) -> tuple[int | None, str | None]:
    """(version, alias) from a challenger given as a version number or an alias name."""
    if value is None:
        return None, None
    text = str(value).strip()
    return (int(text), None) if text.isdigit() else (None, text)


@dataclass
class ServedModel:
    """A served model: its champion alias and version, its challenger, its aliases as last read."""

    name: str
    champion: int
    challenger: int | None
    aliases: dict[str, int] = field(default_factory=dict)


class ModelStore:
    """The served models and their loaded versions. Opens the warehouse only to (re)load."""

    def __init__(self, project, names: list[str] | None, alias: str, challenger: str | int | None,
                 require_entity: bool):
        self.project = project
        self.names = list(dict.fromkeys(names or []))
        self.alias = alias
        self.challenger_version, self.challenger_alias = _version_spec(challenger)
        self.require_entity = require_entity
        self.models: dict[str, ServedModel] = {}
        self._versions: dict[tuple[str, int], LoadedVersion] = {}
        self._lock = threading.Lock()

    def _load_version(self, warehouse, store, row: dict) -> LoadedVersion:
        from dwml_py import model_registry as registry

        key = (row["model_name"], int(row["version"]))
        with self._lock:
            if key in self._versions:
                return self._versions[key]
        model = registry.load_version_model(store, row)
        entity = (model.spec or {}).get("entity") or []
        entity = [entity] if isinstance(entity, str) else list(entity)
        timestamp = (model.spec or {}).get("timestamp")
        if self.require_entity and not entity:
            log.warning("%s v%s records no entity key: its served predictions are not logged", *key)
        loaded = LoadedVersion(key[0], key[1], model, entity, timestamp,
                               row_schema(model, entity, timestamp, self.require_entity and bool(entity)))
        with self._lock:
            return self._versions.setdefault(key, loaded)

    def load(self) -> dict:
        """(Re)read the aliases of the served models and load the versions they point at."""
        from dwml_py import model_registry as registry
        from dwml_py.artifacts import ArtifactStore
        from dwml_py.rows import ensure_once
        from dwml_py.warehouse import connect

        store = ArtifactStore.for_project(self.project)
        models: dict[str, ServedModel] = {}
        with connect(self.project) as warehouse:
            ensure_once(warehouse)
            names = self.names or [m["model_name"] for m in registry.list_models(warehouse)
                                   if self.alias in m["aliases"]]
            if not names:
                raise NotFoundError(f"No registered model has the alias {self.alias!r}; there is nothing to serve.",
                                    hint="deploy a version first (`dwml deploy NAME --version N`), or name the "
                                    "models and the alias to serve (`dwml serve NAME --alias ALIAS`).")
            for name in names:
                aliases = {a: int(r["version"]) for a, r in registry.current_aliases(warehouse, name).items()}
                champion = registry.get_version(warehouse, name, alias=self.alias)
                self._load_version(warehouse, store, champion)
                challenger = None
                if self.challenger_version is not None or self.challenger_alias is not None:
                    row = registry.get_version(warehouse, name, version=self.challenger_version,
                                               alias=self.challenger_alias)
                    challenger = self._load_version(warehouse, store, row).version
                models[name] = ServedModel(name, int(champion["version"]), challenger, aliases)
        previous = self.models
        with self._lock:
            self.models = models
        return {name: {"champion": m.champion, "challenger": m.challenger,
                       "previous_champion": previous[name].champion if name in previous else None}
                for name, m in models.items()}

    def served(self, name: str) -> ServedModel:
        models = self.models
        if name not in models:
            raise NotFoundError(f"Model {name!r} is not served here.", hint=did_you_mean(name, models))
        return models[name]

    def get(self, name: str, version: int) -> LoadedVersion:
        """A loaded version; one not loaded yet is loaded now (and kept)."""
        with self._lock:
            found = self._versions.get((name, version))
        if found is not None:
            return found
        from dwml_py import model_registry as registry
        from dwml_py.artifacts import ArtifactStore
        from dwml_py.warehouse import connect

        with connect(self.project) as warehouse:
            row = registry.get_version(warehouse, name, version=version)
            return self._load_version(warehouse, ArtifactStore.for_project(self.project), row)

    def resolve(self, name: str, version: int | None, alias: str | None) -> LoadedVersion:
        served = self.served(name)
        if alias is not None:
            if alias not in served.aliases:
                raise NotFoundError(f"Model {name!r} has no alias {alias!r} (as of the last reload).",
                                    hint=did_you_mean(alias, served.aliases) + "; after a deploy, POST /reload.")
            version = served.aliases[alias]
        return self.get(name, served.champion if version is None else version)

    def describe(self) -> list[dict]:
        out = []
        for m in self.models.values():
            champion = self.get(m.name, m.champion).model
            out.append({
                "model_name": m.name, "task": champion.task, "algorithm": champion.algorithm,
                "champion": {"alias": self.alias, "version": m.champion},
                "challenger": None if m.challenger is None else {"version": m.challenger},
                "aliases": dict(sorted(m.aliases.items())),
                "features": [{"name": f["name"], "kind": f["kind"]} for f in champion.features],
            })
        return out


# -- routing, validation, scoring -----------------------------------------------------------------

class Router:
    """Which role scores a row: challenger for `share` of entity keys (hashed) or of requests (seeded)."""

    def __init__(self, share: float, seed: int = 0):
        self.share = share
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def bucket(self, name: str, key: str) -> float:
        """A uniform number in [0, 1) fixed by the model name and the entity key."""
        digest = hashlib.sha256(f"{name}\x1f{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def draw(self) -> float:
        with self._lock:
            return self._random.random()

    def roles(self, name: str, keys: list[str | None]) -> list[str]:
        if self.share <= 0:
            return ["champion"] * len(keys)
        request_draw = self.draw() if any(k is None for k in keys) else None
        return ["challenger" if (self.bucket(name, k) if k is not None else request_draw) < self.share
                else "champion" for k in keys]


def routing_key(row: dict, entity: list[str]) -> str | None:
    values = [row.get(c) if isinstance(row, dict) else None for c in entity]
    if not entity or any(v is None for v in values):
        return None
    return "\x1f".join(str(v) for v in values)


class RowErrors(InputError):
    """Rows that do not match the feature schema; `errors` names each row and field (HTTP 422)."""

    def __init__(self, errors: list[dict], known: list[str]):
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        hint = "send every feature of the model (null for a missing value) with the types of GET /models"
        unknown = [e["field"] for e in errors if e["type"] == "extra_forbidden"]
        if unknown:
            hint = f"field {unknown[0]!r} is not a feature of the model: {did_you_mean(unknown[0], known)}"
        super().__init__(f"Row {first['row']}, field {first['field']!r}: {first['message']}{more}.", hint=hint)
        self.errors = errors


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(version: LoadedVersion, name: str | None, err: dict) -> str:
    if err["type"] == "missing" and name in version.entity:
        return "the entity key is required: served predictions are logged by it"
    if err["type"] in ("missing", "extra_forbidden"):
        return err["msg"]
    if name in version.entity:
        expected = "The entity key should be a 64-bit integer or a string"
    elif name == version.timestamp:
        if err["type"] == "value_error":  # said by _iso_text or _utc_in_range
            return f"The timestamp {str(err['msg']).removeprefix('Value error, ')}, got {_short(err.get('input'))}"
        expected = "The timestamp should be an ISO 8601 date or datetime"
    else:
        expected = err["msg"]
    return f"{expected}, got {_short(err.get('input'))}"


def validate_rows(version: LoadedVersion, rows: list[tuple[int, Any]]) -> tuple[list[dict], list[dict]]:
    """(validated rows by column name, errors naming row and field)."""
    from pydantic import ValidationError

    valid, errors = [], []
    for index, row in rows:
        if not isinstance(row, dict):
            errors.append({"row": index, "field": None, "type": "row_type", "message": "a row must be a JSON object "
                           f"of feature values, got {_short(row)}"})
            continue
        try:
            valid.append(version.row_schema.model_validate(row).model_dump(by_alias=True))
        except ValidationError as exc:
            seen = set()
            for err in exc.errors(include_url=False):
                name = str(err["loc"][0]) if err["loc"] else None
                if name in seen:  # a union (entity key, timestamp) reports each alternative: say it once
                    continue
                seen.add(name)
                errors.append({"row": index, "field": name, "type": err["type"],
                               "message": _message(version, name, err)})
    return valid, errors


_ARROW_TYPES = {"numeric": pa.float64(), "boolean": pa.bool_(), "categorical": pa.string()}


def _entity_text(version: LoadedVersion, rows: list[dict]) -> list[str | None]:
    """The entity key of each row as dwml.predictions holds it (as batch scoring writes it); None without one."""
    from dwml_py.batch_scoring import entity_keys

    keys: list[str | None] = [None] * len(rows)
    have = [i for i, row in enumerate(rows) if version.entity and all(row.get(c) is not None for c in version.entity)]
    if have:
        table = _entity_table([rows[i] for i in have], version.entity)
        for i, text in zip(have, entity_keys(table, version.entity).to_pylist()):
            keys[i] = text
    return keys


def _entity_table(rows: list[dict], columns: list[str]) -> pa.Table:
    data = {}
    for c in columns:
        values = [row.get(c) for row in rows]
        try:
            data[c] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # a key sent as numbers and as strings
            data[c] = pa.array([None if v is None else str(v) for v in values], type=pa.string())
    return pa.table(data)


def score_rows(version: LoadedVersion, rows: list[dict]) -> tuple[list[float], list[str | None], list[str | None]]:
    """(scores, labels, entity keys) of validated rows, computed as batch scoring does."""
    from dwml_py.batch_scoring import score_table

    features = pa.table({f["name"]: pa.array([row[f["name"]] for row in rows], type=_ARROW_TYPES[f["kind"]])
                         for f in version.model.features})
    scores, labels = score_table(version.model, features)
    return scores.tolist(), labels if labels is not None else [None] * len(rows), _entity_text(version, rows)


def prediction_rows(version: LoadedVersion, rows: list[dict], scores, labels, keys, scored_at) -> pa.Table:
    """The dwml.predictions rows of scored rows (batch_id is set when the batch is written)."""
    from dwml_py.prediction_log import SOURCE

    n = len(rows)
    snapshots = [_as_timestamp(row.get(version.timestamp)) if version.timestamp else None for row in rows]
    return pa.table({
        "model_name": pa.array([version.name] * n, type=pa.string()),
        "version": pa.array([version.version] * n, type=pa.int64()),
        "entity_key": pa.array(keys, type=pa.string()),
        "snapshot_at": pa.array(snapshots, type=pa.timestamp("us")),
        "score": pa.array(scores, type=pa.float64()),
        "predicted_label": pa.array(labels, type=pa.string()),
        "batch_id": pa.array([""] * n, type=pa.string()),
        "source": pa.array([SOURCE] * n, type=pa.string()),
        "scored_at": pa.array([scored_at] * n, type=pa.timestamp("us")),
    })


# -- the app ----------------------------------------------------------------------------------------

def create_app(project, names: list[str] | None = None, *, alias: str = DEFAULT_ALIAS, api_key: str | None = None,
               challenger: str | int | None = None, challenger_share: float = 0.0, seed: int = 0,
               log_predictions: bool = True, flush_rows: int = 1000, flush_seconds: float = 5.0,
               max_body_bytes: int = MAX_BODY_BYTES, max_pending_rows: int = 1_000_000):
    """The FastAPI app serving `names` (default: every model with `alias`); see the module doc.

    Models are loaded here, so a bad name or a missing alias fails before the server starts.
    """
    require_serve_extra()
    from fastapi import Depends, FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

    from dwml_py.prediction_log import PredictionLog
    from dwml_py.rows import utcnow

    _check_settings(challenger, challenger_share, flush_rows, flush_seconds, max_body_bytes, api_key)
    store = ModelStore(project, names, alias, challenger, require_entity=log_predictions)
    store.load()
    router = Router(challenger_share if challenger is not None else 0.0, seed)
    prediction_log = PredictionLog(project, flush_rows=flush_rows, flush_seconds=flush_seconds,
                                   max_pending_rows=max_pending_rows) if log_predictions else None

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if prediction_log is not None:
            prediction_log.start()
        try:
            yield
        finally:
            if prediction_log is not None:
                await run_in_threadpool(prediction_log.close)

    expected = api_key.encode() if api_key else None

    def authorised(request: Request):
        if expected is None:
            return
        given = api_key_of(request.headers)
        # compare_digest on bytes: constant time whatever the key's length and characters
        if given is None or not hmac.compare_digest(given.encode(), expected):
            raise _Unauthorised()

    app = FastAPI(title="dwml", lifespan=lifespan, docs_url=None if api_key else "/docs",
                  redoc_url=None, openapi_url=None if api_key else "/openapi.json")
    app.add_middleware(CatchUnexpected)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.state.store, app.state.prediction_log = store, prediction_log

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        rows: list[Any] = Field(min_length=1)
        version: StrictInt | None = None
        alias: StrictStr | None = None

    @app.exception_handler(_Unauthorised)
    async def unauthorised(request, exc):
        from fastapi.responses import JSONResponse

        return JSONResponse(status_code=401, headers={"WWW-Authenticate": "Bearer"},
                            content={"error": "Unauthorized", "message": "A valid API key is required."})

    @app.exception_handler(RowErrors)
    async def row_errors(request, exc: RowErrors):
        return error_response(422, exc, errors=exc.errors)

    @app.exception_handler(RequestValidationError)
    async def body_errors(request, exc: RequestValidationError):
        errors = [{"row": None, "field": ".".join(str(p) for p in e["loc"] if p != "body") or None,
                   "type": e["type"], "message": e["msg"]} for e in exc.errors()]
        return error_response(422, InputError(f"Invalid request body: {errors[0]['field'] or 'body'}: "
                                              f"{errors[0]['message']}.",
                                              hint='send {"rows": [{feature: value, ...}], "version": N or '
                                              '"alias": A}.'), errors=errors)

    @app.exception_handler(NotFoundError)
    async def not_found(request, exc):
        return error_response(404, exc)

    @app.exception_handler(InputError)
    async def bad_input(request, exc):
        return error_response(400, exc)

    @app.exception_handler(WarehouseError)
    async def warehouse_unavailable(request, exc):
        response = internal_error(503, "The warehouse is unavailable (busy or locked by another writer); "
                                   "retry shortly.", exc)
        response.headers["Retry-After"] = "5"
        return response

    @app.get("/health", responses=error_responses(500))
    def health():
        return {"status": "ok", "models": len(store.models),
                "predictions": prediction_log.stats() if prediction_log is not None else None}

    @app.get("/models", dependencies=[Depends(authorised)], responses=error_responses(401, 413, 500, 503))
    def models():
        return {"models": store.describe(), "challenger_share": router.share}

    @app.get("/models/{name}/versions", dependencies=[Depends(authorised)],
             responses=error_responses(401, 404, 413, 500, 503))
    def versions(name: str):
        from dwml_py import model_registry as registry
        from dwml_py.warehouse import connect

        store.served(name)
        with connect(project) as warehouse:
            return {"model_name": name, "versions": registry.get_model_versions(warehouse, name)}

    @app.post("/reload", dependencies=[Depends(authorised)], responses=error_responses(401, 404, 413, 500, 503))
    def reload():
        return {"models": store.load()}

    @app.post("/models/{name}/predict", dependencies=[Depends(authorised)],
              responses=error_responses(400, 401, 404, 413, 422, 500, 503))
    def predict(name: str, body: PredictRequest):
        if body.version is not None and body.alias is not None:
            raise InputError(f"Give a version or an alias, not both (got {body.version} and {body.alias!r}).",
                             hint='e.g. {"alias": "staging"}.')
        served = store.served(name)
        if body.version is not None or body.alias is not None:
            requested = store.resolve(name, body.version, body.alias)
            plan = [(requested, "requested")] * len(body.rows)
        else:
            champion = store.get(name, served.champion)
            challenger = store.get(name, served.challenger) if served.challenger is not None else None
            roles = router.roles(name, [routing_key(r, champion.entity) for r in body.rows]) \
                if challenger is not None else ["champion"] * len(body.rows)
            plan = [(challenger if role == "challenger" else champion, role) for role in roles]
        groups: dict[tuple[int, str], list[int]] = {}
        for index, (version, role) in enumerate(plan):
            groups.setdefault((version.version, role), []).append(index)
        errors, validated = [], {}
        for key, indexes in groups.items():
            version = plan[indexes[0]][0]
            valid, bad = validate_rows(version, [(i, body.rows[i]) for i in indexes])
            errors += bad
            validated[key] = valid
        if errors:
            raise RowErrors(sorted(errors, key=lambda e: (e["row"], e["field"] or "")),
                            [f["name"] for f in plan[0][0].model.features])
        results: list[dict] = [{}] * len(body.rows)
        scored_at = utcnow()
        for key, indexes in groups.items():
            version, role = plan[indexes[0]]
            rows = validated[key]
            scores, labels, keys = score_rows(version, rows)
            for i, score, label, entity in zip(indexes, scores, labels, keys):
                results[i] = {"entity_key": entity, "score": score, "label": label, "version": version.version,
                              "role": role}
            if prediction_log is not None and version.logs:
                prediction_log.add(prediction_rows(version, rows, scores, labels, keys, scored_at))
        return {"model_name": name, "versions": sorted({v.version for v, _ in plan}),
                "logged": prediction_log is not None and all(v.logs for v, _ in plan),
                "predictions": results}

    return app


class _Unauthorised(Exception):
    pass


def _check_settings(challenger, share, flush_rows, flush_seconds, max_body_bytes, api_key) -> None:
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        raise InputError(f"challenger_share must be a number from 0 to 1, got {share!r}.",
                         hint="e.g. --challenger-share 0.1 sends 10% of the traffic to the challenger.")
    if share > 0 and challenger is None:
        raise InputError(f"challenger_share is {share} but no challenger is named.",
                         hint="name it: --challenger staging (an alias) or --challenger 3 (a version).")
    if challenger is not None and share == 0:
        raise InputError(f"The challenger {challenger!r} would get no traffic: challenger_share is 0.",
                         hint="e.g. --challenger-share 0.1.")
    for what, value, minimum in (("flush_rows", flush_rows, 1), ("flush_seconds", flush_seconds, 0.01),
                                 ("max_body_bytes", max_body_bytes, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise InputError(f"{what} must be a number >= {minimum}, got {value!r}.",
                             hint=f"--{what.replace('_', '-')} takes a positive number.")
    if api_key is not None and not api_key.strip():
        raise InputError("The API key is empty.", hint="set the variable named by --api-key-env to a long random "
                         "string, e.g. `export DWML_API_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')`.")


def api_key_from_env(variable: str | None) -> str | None:
    """The API key held by the environment variable `variable` (None when no variable is named)."""
    if not variable:
        return None
    value = os.environ.get(variable, "")
    if not value.strip():
        raise ConfigError(f"--api-key-env names {variable}, which is not set or empty.",
                          hint=f"export {variable}=<a long random key> before `dwml serve`.")
    return value


def serve(project, names: list[str] | None = None, *, host: str = "127.0.0.1", port: int = 8000,
          api_key_env: str | None = None, **settings) -> None:
    """Build the app and run it with uvicorn until interrupted (the prediction log flushes on the way out)."""
    require_serve_extra()
    import uvicorn

    api_key = api_key_from_env(api_key_env)
    if api_key:
        from dwml_py.redaction import register

        register([api_key])  # never in the log, whatever a request or an error carries
    app = create_app(project, names, api_key=api_key, **settings)
    _log_to_stderr()
    if api_key is None and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s without an API key: anyone who can reach it can score and list models", host)
    for model in app.state.store.describe():
        challenger = model["challenger"]
        log.info("serving %s v%s (%s)%s", model["model_name"], model["champion"]["version"],
                 model["champion"]["alias"], f", challenger v{challenger['version']}" if challenger else "")
    uvicorn.run(app, host=host, port=port, log_level="info")


def _log_to_stderr() -> None:
    """dwml.serving's messages (flushes, retries, errors) next to uvicorn's, on stderr."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)-9s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
