"""The FastAPI app over a :class:`~crossmodal.serve.service.SearchService`: :func:`create_app`.

Routes: ``GET /healthz``, ``GET /api/runs``, ``POST /api/search`` (JSON, or a multipart upload
with an ``image`` file), ``GET /api/items/{part}/{id}``, the page (``/`` and ``/static/...``,
files of this package: no CDN, no build step) and the OpenAPI page ``/docs`` (Swagger UI from the
``swagger-ui-bundle`` package when installed, else a link to ``/openapi.json``). Requests name
runs and items by name and id, never by path. Every error is ``{"error": "one line"}`` with a 4xx
status (handlers below, and :class:`~crossmodal.serve.guard.Guard` for the rest).
"""

from __future__ import annotations

import json
import tempfile
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from crossmodal import __version__
from crossmodal.errors import CrossmodalError
from crossmodal.serve.guard import Guard
from crossmodal.serve.models import ERRORS, Limits, RunOut, SearchRequest, SearchResponse, UploadFields
from crossmodal.serve.service import NotFound, SearchService

STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}
PAGE_POLICY = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
FORM_FIELDS = ("k", "run", "direction")
SEARCH_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/SearchRequest"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["image"], "properties": {
        "image": {"type": "string", "format": "binary"}, "k": {"type": "integer", "minimum": 1, "maximum": 1000},
        "run": {"type": "string"}, "direction": {"type": "string", "enum": ["i2t", "i2i"]}}}}}}}


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def first_problem(exc) -> str:
    """One line out of a pydantic / FastAPI validation error: where, and what is wrong."""
    errs = exc.errors()
    if not errs:
        return "invalid request"
    e = errs[0]
    where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body",)) or "request"
    msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    return f"{where}: {msg}{more}"


def static_file(name: str) -> bytes:
    return resources.files("crossmodal.serve").joinpath("static", name).read_bytes()


def swagger_dir():
    """The folder of Swagger UI's files (``swagger-ui-bundle`` package), or None."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return swagger_ui_path


def create_app(service: SearchService, token: str | None = None, loopback_only: bool = True,
               limits: Limits = Limits()) -> FastAPI:
    """The app answering for ``service``; ``token``: required on every request when given;
    ``loopback_only``: answer only to Host headers localhost / 127.0.0.1 / [::1]."""
    app = FastAPI(title="crossmodal", version=__version__, docs_url=None, redoc_url=None,
                  description="Search trained crossmodal runs with a sentence, an image or a dataset item.")
    files = {name: static_file(name) for name in STATIC}

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        if exc.status_code == 404 and exc.detail == "Not Found":
            return error(404, f"no such address: {request.url.path[:80]} (the API is under /api, described at /docs)")
        return error(exc.status_code if 400 <= exc.status_code < 500 else 400, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, exc):
        return error(422, first_problem(exc))

    @app.exception_handler(CrossmodalError)
    async def refused(request, exc):
        return error(404 if isinstance(exc, NotFound) else 400, str(exc).splitlines()[0] if str(exc) else "refused")

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/api/runs", response_model=list[RunOut], tags=["search"])
    def runs():
        """The served runs: method, bits, dataset, conventions and mAP."""
        return JSONResponse(service.runs())

    @app.post("/api/search", response_model=SearchResponse, responses=ERRORS, tags=["search"],
              openapi_extra=SEARCH_BODY)
    async def search(request: Request):
        """Search with a sentence (``{"text": ..., "k": 10}``), a dataset item (``{"item": ID,
        "part": "database", "modality": "image"}``) or an uploaded image (multipart, field ``image``).
        Hits come in the order ``crossmodal query`` prints them."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            body = await request.body()
            if len(body) > limits.max_json:
                return error(413, f"JSON body of {len(body):,} bytes is over the {limits.max_json:,}-byte limit")
            try:
                payload = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                return error(400, f"the body is not JSON ({str(exc).splitlines()[0][:120]})")
            if not isinstance(payload, dict):
                return error(422, "the body must be a JSON object")
            req = parse_request(payload)
            return JSONResponse(await run_in_threadpool(service.search, req))
        if kind == "multipart/form-data":
            return await search_upload(request)
        return error(415, f"send application/json or multipart/form-data, not {kind or 'no content type'!r}")

    async def search_upload(request: Request):
        async with request.form(max_files=1, max_fields=len(FORM_FIELDS), max_part_size=limits.max_body) as form:
            unknown = sorted(set(form) - {"image", *FORM_FIELDS})
            if unknown:
                return error(422, f"unknown form field {unknown[0]!r}; send image, {', '.join(FORM_FIELDS)}")
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                return error(422, "image: attach an image file (PNG, JPEG) in the field 'image'")
            req = parse_upload_fields({k: form[k] for k in FORM_FIELDS if k in form})
            data = await upload.read()
        with tempfile.NamedTemporaryFile(prefix="crossmodal-query-", suffix=".img") as f:
            f.write(data)
            f.flush()
            try:
                return JSONResponse(await run_in_threadpool(service.search, req, f.name))
            except CrossmodalError as exc:  # name the upload, not the server's temporary file
                raise type(exc)(str(exc).replace(f.name, "the uploaded image")) from None

    @app.get("/api/items/{part}/{item_id:path}", responses={200: {"content": {"image/png": {}}}, **ERRORS},
             tags=["search"])
    def item(part: str, item_id: str, run: str | None = None, modality: str | None = None):
        """A dataset item of split part ``query`` or ``database``: a PNG thumbnail where its
        dataset keeps pixels, else its text and labels."""
        if part not in ("query", "database"):
            return error(404, f"part must be query or database, got {part[:40]!r}")
        if modality not in (None, "image", "text"):
            return error(422, f"modality must be image or text, got {modality[:40]!r}")
        out = service.item(run, part, item_id, modality)
        if isinstance(out, bytes):
            return Response(out, media_type="image/png", headers={"cache-control": "private, max-age=3600"})
        return JSONResponse(out)

    @app.get("/", include_in_schema=False)
    def page():
        return Response(files["index.html"], media_type=STATIC["index.html"],
                        headers={"content-security-policy": PAGE_POLICY, "cache-control": "no-cache"})

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        if name not in files:
            return error(404, f"no static file {name[:60]!r}")
        return Response(files[name], media_type=STATIC[name], headers={"cache-control": "no-cache"})

    add_docs(app)
    add_request_schema(app)
    app.add_middleware(Guard, token=token, loopback_only=loopback_only, max_body=limits.max_body)
    return app


def parse_request(payload: dict) -> SearchRequest:
    """A JSON body as a :class:`SearchRequest`; a 422 naming the first problem otherwise."""
    try:
        return SearchRequest.model_validate(payload)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


def parse_upload_fields(fields: dict) -> SearchRequest:
    """The text fields of an image upload (``k``, ``run``, ``direction``) as a :class:`SearchRequest`
    with neither text nor item (the image is the query); a 422 naming the first problem otherwise."""
    try:
        up = UploadFields.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    return SearchRequest.model_construct(text=None, item=None, part="database", modality="image",
                                         **up.model_dump())


def add_request_schema(app: FastAPI) -> None:
    """Put :class:`SearchRequest` into the OpenAPI components (``/api/search`` reads its body by
    hand, to take JSON or a multipart upload, so FastAPI does not find the model by itself)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas["SearchRequest"] = SearchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def add_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI served from the installed ``swagger-ui-bundle`` files (no CDN)."""
    from fastapi.openapi.docs import get_swagger_ui_html

    folder = swagger_dir()
    assets = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon-32x32.png": "image/png"}

    @app.get("/docs", include_in_schema=False)
    def docs():
        if folder is None:
            return HTMLResponse('<!doctype html><title>crossmodal API</title><p>The interactive page needs the '
                                '<code>swagger-ui-bundle</code> package (<code>pip install crossmodal[serve]</code>). '
                                'The API description: <a href="/openapi.json">/openapi.json</a>.</p>')
        return get_swagger_ui_html(openapi_url="/openapi.json", title="crossmodal API",
                                   swagger_js_url="/docs/swagger-ui-bundle.js", swagger_css_url="/docs/swagger-ui.css",
                                   swagger_favicon_url="/docs/favicon-32x32.png",
                                   swagger_ui_parameters={"validatorUrl": None})

    @app.get("/docs/{name}", include_in_schema=False)
    def docs_asset(name: str):
        if folder is None or name not in assets:
            return error(404, f"no documentation file {name[:60]!r}")
        return Response(folder.joinpath(name).read_bytes(), media_type=assets[name],
                        headers={"cache-control": "max-age=86400"})
