"""What the HTTP API takes and gives: the caps on a request (:class:`Limits`), the search request
(:class:`SearchRequest`, checked strictly: unknown keys, wrong types and out-of-range values are a
422) and the answers' shapes, which the OpenAPI page at ``/docs`` shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

MAX_K = 1000
MAX_TEXT = 1000  # characters of a typed query
MAX_ID = 256  # characters of an item id
MAX_RUN_NAME = 256


@dataclass(frozen=True)
class Limits:
    """Caps on one request: the whole body (an uploaded image included), a JSON body, k.
    Image pixels are capped where the image is opened (``crossmodal.features.MAX_IMAGE_PIXELS``)."""

    max_body: int = 16 * 1024 * 1024
    max_json: int = 64 * 1024
    max_k: int = MAX_K


class SearchRequest(BaseModel):
    """``POST /api/search``: a sentence (``text``) or a dataset item (``item`` with ``part`` and
    ``modality``); an image goes in a multipart upload (field ``image``) with the same fields."""

    model_config = ConfigDict(extra="forbid")

    text: Optional[StrictStr] = Field(None, min_length=1, max_length=MAX_TEXT, description="a typed sentence")
    item: Optional[StrictStr] = Field(None, min_length=1, max_length=MAX_ID,
                                      description="the id of a dataset item, as crossmodal query prints it")
    part: Literal["query", "database"] = Field("database", description="the split part the item is in")
    modality: Optional[Literal["image", "text"]] = Field(
        None, description="which of the item's features query (default: the one the direction starts from)")
    k: StrictInt = Field(10, ge=1, le=MAX_K, description="number of hits")
    run: Optional[StrictStr] = Field(None, max_length=MAX_RUN_NAME, description="a served run (default: the first)")
    direction: Optional[Literal["i2t", "t2i", "i2i", "t2t"]] = Field(
        None, description="query modality 2 searched modality (default: the other modality)")

    @model_validator(mode="after")
    def _one_query(self):
        given = [name for name in ("text", "item") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of text or item (an image goes in a multipart upload)")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is blank")
        return self


class UploadFields(BaseModel):
    """The form fields beside an uploaded ``image`` (multipart ``POST /api/search``); ``k`` as text."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(10, ge=1, le=MAX_K)
    run: Optional[StrictStr] = Field(None, max_length=MAX_RUN_NAME)
    direction: Optional[Literal["i2t", "i2i"]] = None


class HitOut(BaseModel):
    id: str = Field(description="the item id, as crossmodal query prints it")
    index: int = Field(description="the id the index returned (the position in the run's database part)")
    distance: int = Field(description="Hamming distance to the query's code")
    labels: list[str] = []
    text: Optional[str] = Field(None, description="the caption of a text hit")
    image_url: Optional[str] = Field(None, description="a thumbnail of an image hit (datasets that keep pixels)")
    relevant: Optional[bool] = Field(None, description="shares a label with the query item (item queries)")


class QueryOut(BaseModel):
    kind: Literal["text", "image", "item"]
    modality: Literal["image", "text"]
    target: Literal["image", "text"]
    direction: str
    k: int
    text: Optional[str] = None
    item: Optional[str] = None
    part: Optional[str] = None
    labels: Optional[list[str]] = None
    precision: Optional[float] = Field(None, description="P@k of an item query: relevant hits / min(k, database)")


class SearchResponse(BaseModel):
    run: str
    query: QueryOut
    hits: list[HitOut]


class RunOut(BaseModel):
    name: str
    method: str
    label: Optional[str] = None
    bits: int
    seed: int
    dataset: str
    n_query: int
    n_database: int
    modalities: list[str]
    queryable: list[str] = Field(description="modalities a new query can come in (stored featurizers)")
    directions: list[str]
    pixels: bool = Field(description="the dataset keeps pixels: image hits have thumbnails")
    index: dict = Field(description="per searched modality: 'run' (its own FAISS file) or the index URI's scheme")
    database_codes: Optional[str] = None
    mAP: dict = Field(description="mAP@all per direction from the run's report")
    conventions: dict = {}


class ErrorOut(BaseModel):
    error: str


ERRORS = {code: {"model": ErrorOut} for code in (400, 401, 404, 405, 413, 415, 422)}
