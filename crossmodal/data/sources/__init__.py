"""Named data sources: one module per dataset (toy, wiki, images: digits / cifar10, mirflickr,
nuswide, coco, iaprtc12), the benchmark specs (:mod:`.spec`), their community ``.mat`` files
(:mod:`.community`) and the registry of names (:mod:`.registry`)."""

from crossmodal.data.sources.community import load_source, read_community
from crossmodal.data.sources.registry import (
    SOURCES,
    Source,
    describe_routes,
    get_dataset,
    get_spec,
    source_specs,
)
from crossmodal.data.sources.spec import RawCollection, SourceSpec

__all__ = [
    "load_source", "read_community", "SOURCES", "Source", "describe_routes", "get_dataset", "get_spec",
    "source_specs", "RawCollection", "SourceSpec",
]
