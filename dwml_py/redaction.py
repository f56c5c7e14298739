"""Secrets from profiles.yml, kept out of everything dwml shows, logs or stores: by value.

Masking by key name (`password: ****`) only protects settings shown as a mapping. A secret also
travels as text: DuckDB refuses `SET s3_secret_access_key = '...'` and the statement ends up in an
error message, a driver echoes a DSN, a run stores the error that failed it. So when a profile is
resolved, its secret *values* are registered here, and every way out of dwml scrubs them from text:

- every DwmlError's message and hint (dwml_py.errors), so no error can carry one;
- the CLI's output and tracebacks (dwml_py.console), the agent server's results and errors
  (dwml_py.mcp_server), the REST server's log (dwml_py.serving);
- every string literal written into SQL (dwml_py.sql.literal), so no table stores one.

Which values are secret (`secret_values`):

1. values under a key that names a credential (password, secret, token, key, ...), at any depth;
2. every value below the top level of the target (settings, extensions, attach, plugins,
   secrets, server_side_parameters, ...) and of top-level settings passed through as text
   (`options`, a DSN): those are handed to the engine as they are and may hold a credential
   under any name;
3. values of environment variables named DBT_ENV_SECRET_* (dbt's convention), wherever used.

Values too short or too common to be a secret (under 4 characters, numbers, true/false/...) are
not scrubbed from text, or every "1" and "false" in dwml's output would be masked; they are still
masked in the settings view (`masked`). Top-level settings that are not credentials (type, path,
host, port, user, dbname, schema, threads) are not secrets: messages name them on purpose.

>>> register(["hunter2-secret"])
>>> scrub("SET x = 'hunter2-secret'")
"SET x = '****'"
>>> secret_values({"type": "duckdb", "path": "w.duckdb", "settings": {"s3_region": "eu-west-1"},
...                "password": "pw-4711"}) == {"eu-west-1", "pw-4711"}
True
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from typing import Any

REDACTED = "****"
SECRET_ENV_PREFIX = "DBT_ENV_SECRET_"
# Parts of a key name that make its value a credential (matched anywhere in the lower-cased key).
CREDENTIAL_WORDS = ("password", "passwd", "pass", "secret", "token", "key", "credential", "private",
                    "passphrase", "auth", "cert")
# Top-level settings handed to the engine as they are, as text (libpq's `options`, connection
# arguments): secret like everything below the top level.
PASSED_THROUGH = {"options", "connect_args", "conn_args", "dsn", "connection_string", "url", "uri"}
MIN_SECRET_LENGTH = 4
_COMMON = {"true", "false", "null", "none", "yes", "no", "on", "off"}
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()  # longest first, so a secret containing another is masked whole


def is_credential_key(key: Any) -> bool:
    lowered = str(key).lower()
    return any(word in lowered for word in CREDENTIAL_WORDS)


def worth_scrubbing(value: Any) -> bool:
    """Whether `value` can be masked in free text without masking ordinary words and numbers."""
    if isinstance(value, (bool, int, float)) or value is None:
        return False
    text = str(value).strip()
    return len(text) >= MIN_SECRET_LENGTH and text.lower() not in _COMMON and not _NUMBER.match(text)


def secret_values(settings: dict) -> set[str]:
    """The secret values of a target's settings (see the module doc), as text."""
    found: set[str] = set()

    def leaves(value: Any) -> Iterable[Any]:
        if isinstance(value, dict):
            for item in value.values():
                yield from leaves(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from leaves(item)
        elif value is not None:
            yield value

    for key, item in (settings or {}).items():
        if is_credential_key(key) or str(key).lower() in PASSED_THROUGH or isinstance(item, (dict, list, tuple)):
            found.update(str(v) for v in leaves(item))
    return {v for v in found if worth_scrubbing(v)}


def register(values: Iterable[Any]) -> None:
    """Add secret values; from now on `scrub` masks them in this process."""
    global _secrets
    new = {str(v) for v in values if worth_scrubbing(v)}
    if not new:
        return
    with _lock:
        if new <= set(_secrets):
            return
        _secrets = tuple(sorted(set(_secrets) | new, key=len, reverse=True))


def registered() -> tuple[str, ...]:
    return _secrets


def clear() -> None:
    """Forget every registered secret (the test suite does this between tests; a new process starts empty)."""
    global _secrets
    with _lock:
        _secrets = ()


def _forms(secret: str) -> list[str]:
    """The secret as it may appear in text: as is, inside a SQL string ('' for '), inside JSON."""
    forms = [secret, secret.replace("'", "''"), json.dumps(secret)[1:-1]]
    return list(dict.fromkeys(f for f in forms if f))


def scrub(text: Any) -> Any:
    """`text` with every registered secret replaced by ****; anything but a string is returned as is."""
    if not isinstance(text, str) or not _secrets:
        return text
    for secret in _secrets:
        for form in _forms(secret):
            if form in text:
                text = text.replace(form, REDACTED)
    return text


def scrub_data(value: Any) -> Any:
    """A copy of a JSON-like value with every string (keys included) scrubbed; structure is kept, so
    the result is still valid JSON when serialised."""
    if not _secrets:
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: scrub_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_data(v) for v in value]
    return value


def masked(settings: Any) -> Any:
    """Settings safe to show or store: values of credential keys masked at any depth, every other
    string scrubbed of secrets."""
    if isinstance(settings, dict):
        return {k: (REDACTED if is_credential_key(k) and v not in (None, "") else masked(v))
                for k, v in settings.items()}
    if isinstance(settings, (list, tuple)):
        return [masked(v) for v in settings]
    return scrub(settings)
