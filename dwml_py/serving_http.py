"""The HTTP plumbing of `dwml serve` (dwml_py.serving): what every request and error goes through.

- `BodyLimit`: 413 for a body over the limit, declared or streamed.
- `CatchUnexpected`: an unexpected exception becomes one log record with its traceback and a 500
  carrying only an error id (FastAPI's own handler for Exception answers, but Starlette then
  raises the exception again and the server logs the traceback a second time).
- `error_responses`: the error statuses a route answers, with their body, for /openapi.json.
- The server log is scrubbed of secrets from profiles.yml and of the API key (dwml_py.redaction).
"""

import functools
import logging
import uuid

from dwml_py.errors import DwmlError

log = logging.getLogger("dwml.serving")


class BodyLimit:
    """ASGI middleware: 413 for a request body over `limit` bytes (declared or streamed)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._too_large(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                return await self._too_large(scope, receive, send)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope, receive, send):
        from starlette.responses import JSONResponse

        response = JSONResponse(status_code=413, content={
            "error": "PayloadTooLarge", "message": f"The request body is over {self.limit:,} bytes.",
            "hint": "send fewer rows per request."})
        await response(scope, receive, send)


def api_key_of(headers) -> str | None:
    given = headers.get("x-api-key")
    if given is None:
        scheme, _, token = (headers.get("authorization") or "").partition(" ")
        given = token.strip() if scheme.lower() == "bearer" else None
    return given


class CatchUnexpected:
    """ASGI middleware: an unexpected exception becomes one logged record with its traceback and a
    500 carrying only an error id (see the module doc)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            response = internal_error(500, "Internal error; the server log has the detail under this error id.", exc)
            if not started:  # else the client already has a status line: the log is all we can do
                await response(scope, receive, send)


class _Redacting(logging.Filter):
    """Secrets from profiles.yml (and the API key) never reach the server log, tracebacks included."""

    def filter(self, record: logging.LogRecord) -> bool:
        from dwml_py.redaction import registered, scrub

        if not registered():
            return True
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


log.addFilter(_Redacting())


def error_responses(*codes: int) -> dict:
    """The error statuses a route can answer, with their body, for the OpenAPI document."""
    error = _error_model()
    described = {
        400: "Bad input the client can fix (e.g. both version and alias given).",
        401: "A valid API key is required (only when the server runs with --api-key-env).",
        404: "The model, version or alias is not served here.",
        413: "The request body is larger than --max-body-bytes.",
        422: "The body or a row does not match the model's feature schema; `errors` names each row and field.",
        500: "An internal error; the server log has the detail under `error_id`.",
        503: "The warehouse is busy or locked by another writer; retry after Retry-After seconds.",
    }
    return {code: {"model": error, "description": described[code]} for code in codes}


@functools.cache
def _error_model():
    """The body of every error response (pydantic comes with the serve extra)."""
    from pydantic import BaseModel

    class RowError(BaseModel):
        row: int | None = None
        field: str | None = None
        type: str
        message: str

    class Error(BaseModel):
        error: str
        message: str
        hint: str | None = None
        error_id: str | None = None
        errors: list[RowError] | None = None

    return Error


def error_response(status: int, exc: DwmlError, **extra):
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=status, content={**exc.to_dict(), **extra})


def internal_error(status: int, message: str, exc: BaseException):
    from fastapi.responses import JSONResponse

    error_id = uuid.uuid4().hex[:12]
    log.error("error %s: %s: %s", error_id, type(exc).__name__, exc, exc_info=exc)
    return JSONResponse(status_code=status, content={"error": "InternalError", "message": message,
                                                     "error_id": error_id})
