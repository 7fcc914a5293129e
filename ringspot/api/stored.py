"""Send a file from the store: straight from disk for the local folder, streamed (ranges too) from S3."""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, request, send_file

from ..core.storage import Range, store_at
from .context import settings


def send_stored(key: str, *, download_name: str, mimetype: str, as_attachment: bool = True) -> Response:
    """The file at ``key`` (``NotFound`` if missing), honouring a single ``Range`` as ``send_file`` does."""
    store = store_at(settings().data_path)
    path = store.local_path(key)
    if path is not None:
        return send_file(path, mimetype=mimetype, as_attachment=as_attachment, download_name=download_name)

    size = store.size(key)
    wanted = request.range.range_for_length(size) if request.range else None
    disposition = "attachment" if as_attachment else "inline"
    name = quote(download_name)
    headers = {"Accept-Ranges": "bytes", "Content-Disposition": f"{disposition}; filename*=UTF-8''{name}"}
    if request.range and wanted is None:
        return Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if wanted is None:
        body = store.chunks(key)
        return Response(body, mimetype=mimetype, headers={**headers, "Content-Length": str(size)})
    start, stop = wanted
    body = store.chunks(key, Range(start, stop - 1))
    headers.update({"Content-Length": str(stop - start), "Content-Range": f"bytes {start}-{stop - 1}/{size}"})
    return Response(body, status=206, mimetype=mimetype, headers=headers)
