"""Artifact storage: content-addressed files, each verified by its sha256 before it is used.

Artifacts (models, preprocessing pipelines, anything a run logs) are plain files under an
artifact root, at `<root>/<sha[:2]>/<sha>/<name>`. The path is derived from the content, so
writing the same bytes twice is a no-op, two runs can never overwrite each other's files, and a
file that no longer matches its recorded hash has been changed behind dwml's back.

Model objects are (de)serialised without pickle: XGBoost in its own JSON/UBJ format,
scikit-learn objects through skops with an explicit list of trusted types.

>>> import tempfile
>>> store = ArtifactStore(tempfile.mkdtemp())
>>> ref = store.put(b"hello", "greeting.txt")
>>> ref.size, ref.sha256[:12]
(5, '2cf24dba5fb0')
>>> store.get(ref.uri, ref.sha256)
b'hello'
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from dwml_py.errors import ConfigError, DwmlError, InputError

ARTIFACT_DIR_ENV = "DWML_ARTIFACT_DIR"
ARTIFACT_DIR_VAR = "dwml_artifact_dir"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# One plain file name: no folders, nothing hidden, nothing a shell or a URI would misread.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}$")


class ArtifactError(DwmlError):
    """An artifact cannot be stored, found or trusted."""


class ArtifactIntegrityError(ArtifactError):
    """The bytes of an artifact do not match the sha256 recorded when it was stored."""


class ArtifactNotFoundError(ArtifactError):
    """The file of a recorded artifact is gone."""


class UntrustedArtifactError(ArtifactError):
    """A serialised object contains types dwml does not trust to load."""


class ArtifactFormatError(ArtifactError):
    """The bytes are not a valid artifact of the expected format."""


@dataclass(frozen=True)
class ArtifactRef:
    """Where an artifact is and what it must hash to."""

    uri: str
    sha256: str
    size: int

    @property
    def name(self) -> str:
        return Path(_uri_path(self.uri)).name

    def to_dict(self) -> dict:
        return asdict(self)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def artifact_root(project) -> Path:
    """The artifact directory: $DWML_ARTIFACT_DIR, else `vars: {dwml_artifact_dir: ...}` in
    dbt_project.yml (relative to the project), else `<project_dir>/artifacts`."""
    configured = os.environ.get(ARTIFACT_DIR_ENV)
    if not configured:
        configured = (project.config.get("vars") or {}).get(ARTIFACT_DIR_VAR)
        if configured is not None and not isinstance(configured, str):
            raise ConfigError(
                f"vars.{ARTIFACT_DIR_VAR} in dbt_project.yml must be a path, got {configured!r}.",
                hint=f"set `vars: {{{ARTIFACT_DIR_VAR}: artifacts}}` or the {ARTIFACT_DIR_ENV} environment variable.")
    if not configured:
        return Path(project.project_dir) / "artifacts"
    path = Path(os.path.expandvars(configured)).expanduser()
    return path if path.is_absolute() else Path(project.project_dir) / path


def _uri_path(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme in ("", None) or (len(parsed.scheme) == 1 and os.name == "nt"):  # a Windows drive
        return uri
    raise InputError(f"Artifact URI {uri!r} uses the scheme {parsed.scheme!r}, which dwml cannot read yet.",
                     hint="artifacts are stored as local files (file://...); point DWML_ARTIFACT_DIR at a "
                     "shared folder to share them.")


class ArtifactStore:
    """Content-addressed files under `root`; every write is atomic, every read verified."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().absolute()

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self.root)!r})"

    @classmethod
    def for_project(cls, project) -> "ArtifactStore":
        return cls(artifact_root(project))

    def path_for(self, sha256: str, name: str) -> Path:
        return self.root / sha256[:2] / sha256 / name

    def put(self, data: bytes, name: str) -> ArtifactRef:
        """Store `data` as `name`; returns where it is and its sha256.

        The file is written to a temporary name in the same folder, flushed to disk and renamed,
        so a crash leaves either the whole file or none, never a truncated one.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InputError(f"Artifact {name!r}: expected bytes, got {type(data).__name__}.",
                             hint="serialise the object first (dump_xgboost, dump_sklearn), or pass a file path "
                             "to run.log_artifact.")
        check_artifact_name(name)
        from dwml_py.call_context import refuse_write

        refuse_write(f"storing the artifact {name!r}")
        data = bytes(data)
        digest = sha256_hex(data)
        final = self.path_for(digest, name)
        if final.is_file() and final.stat().st_size == len(data) and _file_sha256(final) == digest:
            return ArtifactRef(final.as_uri(), digest, len(data))  # same content already stored
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=final.parent)
        except OSError as exc:
            raise ArtifactError(
                f"Cannot write artifact {name!r} under the artifact directory {str(self.root)!r}: "
                f"{exc.strerror or exc}.",
                hint=f"make the folder writable, or point {ARTIFACT_DIR_ENV} (or vars.{ARTIFACT_DIR_VAR} in "
                "dbt_project.yml) at a writable folder.") from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise ArtifactError(f"Cannot write artifact {name!r} to {str(final)!r}: {exc.strerror or exc}.",
                                hint="check free disk space and permissions of the artifact directory.") from exc
        _fsync_dir(final.parent)
        return ArtifactRef(final.as_uri(), digest, len(data))

    def resolve(self, uri: str) -> Path:
        """The local file of `uri`. When the recorded path is gone but the same content-addressed
        path exists under this store's root (the artifact folder was moved), that one is used."""
        path = Path(_uri_path(uri))
        if path.is_file():
            return path
        parts = path.parts
        if len(parts) >= 3 and _SHA256.match(parts[-2]) and parts[-3] == parts[-2][:2]:
            moved = self.path_for(parts[-2], parts[-1])
            if moved.is_file():
                return moved
        return path

    def get(self, uri: str, expected_sha256: str) -> bytes:
        """The bytes of an artifact, only after they are verified against `expected_sha256`."""
        if not isinstance(expected_sha256, str) or not _SHA256.match(expected_sha256.lower()):
            raise InputError(f"Expected sha256 {expected_sha256!r} of artifact {uri!r} is not 64 hex digits.",
                             hint="pass the artifact_sha256 recorded in dwml.model_versions.")
        path = self.resolve(uri)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFoundError(
                f"Artifact {uri!r} is missing: no file at {str(path)!r} (nor under {str(self.root)!r}).",
                hint=f"restore the artifact directory, or set {ARTIFACT_DIR_ENV} to where the artifacts now are; "
                "otherwise retrain the model.") from None
        except OSError as exc:
            raise ArtifactError(f"Cannot read artifact {str(path)!r}: {exc.strerror or exc}.",
                                hint="check the permissions of the artifact directory.") from exc
        actual = sha256_hex(data)
        if actual != expected_sha256.lower():
            raise ArtifactIntegrityError(
                f"Artifact {path.name!r} at {str(path)!r} failed its integrity check: expected sha256 "
                f"{expected_sha256.lower()}, got {actual}. It was changed or corrupted after it was stored, "
                "and dwml refuses to load it.",
                hint="restore the original file from a backup, or retrain and register a new version; never "
                "edit artifacts in place.")
        return data


def check_artifact_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(".tmp"):
        raise InputError(f"Artifact name {name!r} is not a plain file name.",
                         hint="use letters, digits, '_', '.', '+' and '-' (at most 200), no folders, "
                         "e.g. 'model.ubj' or 'preprocessor.skops'.")
    return name


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    # The rename itself must reach the disk too; directories cannot be opened on Windows.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- scikit-learn through skops ----------------------------------------------------------------

# The types dwml's training produces: preprocessing, the estimators it trains, and what those
# hold. skops loads nothing outside this list; a type is added here only after checking that
# loading it cannot run code. Containers, arrays and dtypes are plain data to skops (_DATA_NODES).
TRUSTED_TYPES: tuple[str, ...] = (
    # pipelines and column handling
    "sklearn.pipeline.Pipeline",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.compose._column_transformer.make_column_selector",
    "sklearn.compose._target.TransformedTargetRegressor",
    # preprocessing
    "sklearn.impute._base.SimpleImputer",
    "sklearn.impute._base.MissingIndicator",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._data.RobustScaler",
    "sklearn.preprocessing._data.MinMaxScaler",
    "sklearn.preprocessing._encoders.OneHotEncoder",
    "sklearn.preprocessing._encoders.OrdinalEncoder",
    "sklearn.preprocessing._target_encoder.TargetEncoder",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.preprocessing._function_transformer.FunctionTransformer",
    # estimators dwml trains
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._ridge.Ridge",
    "sklearn.linear_model._coordinate_descent.ElasticNet",
    "sklearn.linear_model._coordinate_descent.Lasso",
    "sklearn.linear_model._base.LinearRegression",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._tree.Tree",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.frozen._frozen.FrozenEstimator",
    "sklearn.dummy.DummyClassifier",
    "sklearn.dummy.DummyRegressor",
    # XGBoost inside a pipeline (on its own it is stored in its native format instead)
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
    "xgboost.core.Booster",
    # plain data types that appear as type references (dtypes, scalar types)
    "builtins.bool", "builtins.int", "builtins.float", "builtins.str", "builtins.bytes", "builtins.NoneType",
    "builtins.dict", "builtins.list", "builtins.tuple", "builtins.set", "builtins.slice", "builtins.object",
    "numpy.dtype", "numpy.ndarray", "numpy.bool_", "numpy.bool", "numpy.object_", "numpy.str_",
    "numpy.float16", "numpy.float32", "numpy.float64", "numpy.int8", "numpy.int16", "numpy.int32",
    "numpy.int64", "numpy.uint8", "numpy.uint16", "numpy.uint32", "numpy.uint64",
    "numpy.random.mtrand.RandomState", "numpy.random._mt19937.MT19937",
)

# skops nodes that only ever rebuild data (containers, arrays, dtypes, JSON values), never
# import or call anything chosen by the file.
_DATA_NODES = frozenset({"DictNode", "ListNode", "TupleNode", "SetNode", "SliceNode", "JsonNode",
                         "NdArrayNode", "DTypeNode", "BytesNode", "BytearrayNode", "SparseMatrixNode"})


def dump_sklearn(obj) -> bytes:
    """A scikit-learn object (pipeline, transformer, estimator) as skops bytes."""
    import skops.io as sio

    try:
        return sio.dumps(obj)
    except Exception as exc:  # skops raises plain TypeErrors for objects it cannot represent
        raise ArtifactFormatError(f"Cannot serialise {type(obj).__name__} with skops: {exc}",
                                  hint="use scikit-learn objects (or XGBoost's own format via dump_xgboost); "
                                  "pickle is not an option in dwml.") from exc


def skops_types(data: bytes) -> set[str]:
    """Every type a skops file asks to import, as 'module.Class' (data-only nodes excluded)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ArtifactFormatError(f"Not a skops file ({exc}).",
                                  hint="the artifact is not what its format says; check artifact_format of "
                                  "the model version.") from exc
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node and node.get("__loader__") not in _DATA_NODES:
                found.add(f"{node.get('__module__')}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def load_sklearn(data: bytes, trusted: Iterable[str] | None = None):
    """Load skops bytes, refusing any type outside TRUSTED_TYPES (plus `trusted`, when given).

    The whole type list is checked before skops rebuilds anything, so a refused file runs no code.
    """
    import skops.io as sio

    allowed = set(TRUSTED_TYPES) | set(trusted or ())
    untrusted = sorted((skops_types(data) | set(sio.get_untrusted_types(data=data))) - allowed)
    if untrusted:
        raise UntrustedArtifactError(
            f"Refusing to load a skops artifact: it contains types dwml does not trust: {', '.join(untrusted)}.",
            hint="only load artifacts dwml produced; if you checked these types are safe, pass them as "
            "load_sklearn(data, trusted=[...]).")
    try:
        return sio.loads(data, trusted=sorted(allowed))
    except Exception as exc:
        raise ArtifactFormatError(f"Cannot load the skops artifact: {type(exc).__name__}: {exc}",
                                  hint="it may come from an incompatible scikit-learn/skops version; compare "
                                  "package_versions of the run with the installed ones.") from exc


# -- XGBoost in its native format --------------------------------------------------------------

XGBOOST_FORMATS = {"json": "xgboost-json", "ubj": "xgboost-ubj"}


def dump_xgboost(model, raw_format: str = "ubj") -> bytes:
    """An XGBoost Booster or scikit-learn wrapper (XGBClassifier, ...) in XGBoost's own format.

    A wrapper keeps its estimator type (as XGBModel.save_model does), so load_xgboost gives the
    wrapper back.
    """
    if raw_format not in XGBOOST_FORMATS:
        raise InputError(f"raw_format must be one of {sorted(XGBOOST_FORMATS)}, got {raw_format!r}.",
                         hint="'ubj' is compact, 'json' readable (and what SQL scoring reads).")
    import xgboost as xgb

    if isinstance(model, xgb.Booster):
        return bytes(model.save_raw(raw_format=raw_format))
    if isinstance(model, xgb.XGBModel):
        booster = model.get_booster()
        booster.set_attr(scikit_learn=json.dumps({"_estimator_type": model._get_type()}))
        try:
            return bytes(booster.save_raw(raw_format=raw_format))
        finally:
            booster.set_attr(scikit_learn=None)
    raise InputError(f"dump_xgboost expects an xgboost Booster or XGBModel, got {type(model).__name__}.",
                     hint="use dump_sklearn for scikit-learn objects.")


def load_xgboost(data: bytes):
    """A Booster, or the scikit-learn wrapper it was saved from (XGBClassifier, XGBRegressor, XGBRanker)."""
    import xgboost as xgb

    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(data))
    except xgb.core.XGBoostError as exc:
        raise ArtifactFormatError(f"Not a valid XGBoost model: {str(exc).splitlines()[0]}",
                                  hint="the artifact is not what its format says; check artifact_format of the "
                                  "model version.") from exc
    meta = booster.attr("scikit_learn")
    if not meta:
        return booster
    wrappers = {"classifier": xgb.XGBClassifier, "regressor": xgb.XGBRegressor, "ranker": xgb.XGBRanker}
    kind = json.loads(meta).get("_estimator_type")
    if kind not in wrappers:
        return booster
    model = wrappers[kind]()
    model.load_model(bytearray(data))
    return model


def guess_format(name: str) -> str | None:
    """The artifact_format implied by a file name, when it is unambiguous."""
    suffix = Path(name).suffix.lower()
    return {".skops": "skops", ".ubj": "xgboost-ubj"}.get(suffix)
