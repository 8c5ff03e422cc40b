"""``crossmodal serve``: an HTTP API and a search page over trained runs (an extra:
``pip install crossmodal[serve]``).

* :mod:`~crossmodal.serve.service`: :class:`SearchService`, the runs (each a
  :class:`~crossmodal.runs.Searcher`, as ``crossmodal query`` uses) and what the API answers;
* :mod:`~crossmodal.serve.app`: :func:`create_app`, the FastAPI app (routes, errors, page, docs);
* :mod:`~crossmodal.serve.guard`: :class:`Guard`, hosts, token, body cap, the last-resort 4xx;
* :mod:`~crossmodal.serve.models`: request and response shapes, :class:`Limits`;
* :mod:`~crossmodal.serve.items`: pictures of dataset items (thumbnails);
* :mod:`~crossmodal.serve.server`: :func:`serve` (bind policy, threads, uvicorn);
* ``static/``: the page (``index.html``, ``app.js``, ``style.css``), served by the app itself.

FastAPI and uvicorn are imported only by :mod:`.app` and :func:`.server.serve`.
"""

from crossmodal.serve.models import Limits, SearchRequest
from crossmodal.serve.server import check_bind, serve
from crossmodal.serve.service import SearchService

__all__ = ["Limits", "SearchRequest", "SearchService", "check_bind", "serve"]
