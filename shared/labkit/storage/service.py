"""Cloud Storage JSON API routes: HTTP <-> Store calls.

google-cloud-storage sends no token when STORAGE_EMULATOR_HOST is set (it uses
AnonymousCredentials). labkit.start() puts the workspace's path key in that variable
(http://127.0.0.1:PORT/labkit-key/KEY), the client keeps it in every URL it builds, and the
links we hand back (mediaLink, resumable session URLs) carry it too: so these routes need
the workspace secret like every other, as a path prefix or a Bearer token.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from labkit.services import uploads
from labkit.services.http import Request, Response, Router
from labkit.storage import errors
from labkit.storage.paths import InvalidName

BUCKET = r"/storage/v1/b/(?P<bucket>[^/]+)"
OBJECT = BUCKET + r"/o/(?P<object>.+?)"


# JSON field types of the resources a request body may carry (storage/v1 discovery
# document): a wrong type is Cloud Storage's 400 "Invalid value", not a crash.
_STRING_MAPS = ("labels", "metadata")
_FIELD_TYPES = {
    "name": str, "location": str, "storageClass": str, "contentType": str,
    "cacheControl": str, "contentEncoding": str, "contentDisposition": str,
    "contentLanguage": str, "md5Hash": str, "crc32c": str, "labels": dict, "metadata": dict,
    "versioning": dict, "lifecycle": dict, "iamConfiguration": dict, "retentionPolicy": dict,
    "cors": list, "defaultEventBasedHold": bool, "sourceObjects": list, "destination": dict,
}


def _checked(body: dict) -> dict:
    for key, kind in _FIELD_TYPES.items():
        value = body.get(key)
        if value is not None and not isinstance(value, kind):
            raise errors.invalid(f"Invalid value for {key}: {json.dumps(value)[:100]}")
    for key in _STRING_MAPS:
        for k, v in (body.get(key) or {}).items():
            if v is not None and not isinstance(v, str):
                raise errors.invalid(f"Invalid value for {key}.{k}: {json.dumps(v)[:100]}")
    for source in body.get("sourceObjects") or []:
        if not isinstance(source, dict) or not isinstance(source.get("name"), str):
            raise errors.invalid("Invalid value for sourceObjects: each needs a name.")
    if isinstance(body.get("destination"), dict):
        _checked(body["destination"])
    return body


def _body(r: Request) -> dict:
    return _checked(r.json())


def _query(request: Request) -> dict:
    return {k: v[0] for k, v in request.query.items()}


def _object_headers(resource: dict) -> dict:
    return {"X-Goog-Generation": resource["generation"],
            "X-Goog-Metageneration": resource["metageneration"],
            "X-Goog-Hash": f"crc32c={resource['crc32c']},md5={resource['md5Hash']}",
            "X-Goog-Stored-Content-Length": resource["size"],
            "X-Goog-Stored-Content-Encoding": resource.get("contentEncoding", "identity"),
            "ETag": resource["etag"]}


def _parse_multipart(request: Request) -> tuple[dict, bytes]:
    try:
        upload = uploads.multipart_related(request.headers.get("content-type", ""), request.body)
    except uploads.BadUpload as exc:
        raise errors.invalid(str(exc)) from None
    metadata = _checked(upload.metadata)
    if "contentType" not in metadata and upload.media_type:
        metadata["contentType"] = upload.media_type
    return metadata, upload.media


def register(router: Router, services) -> None:
    from labkit.storage import batch

    store = services.objects
    batch.register(router, services)  # POST /batch/storage/v1 over the routes below

    def add(method: str, pattern: str, handler) -> None:
        router.add(method, pattern, _names_checked(handler))

    def public(r: Request, resource: dict) -> dict:
        return store.public(resource, r.base_url)

    # ---- buckets
    def insert_bucket(r: Request):
        return store.create_bucket(_body(r), r.arg("project"))

    def list_buckets(r: Request):
        return {"kind": "storage#buckets",
                "items": store.list_buckets(r.arg("project"), r.arg("prefix") or "")}

    add("POST", r"/storage/v1/b", insert_bucket)
    add("GET", r"/storage/v1/b", list_buckets)
    add("GET", BUCKET, lambda r: store.get_bucket(r.params["bucket"]))
    add("PATCH", BUCKET, lambda r: store.patch_bucket(r.params["bucket"], _body(r)))
    add("PUT", BUCKET, lambda r: store.patch_bucket(r.params["bucket"], _body(r)))

    def delete_bucket(r: Request):
        store.delete_bucket(r.params["bucket"])
        return Response(204)

    add("DELETE", BUCKET, delete_bucket)

    # ---- objects
    def list_objects(r: Request):
        q = _query(r)
        max_results = min(r.int_arg("maxResults", 1000) or 1000, 1000)
        listing = store.list_objects(
            r.params["bucket"], q.get("prefix") or "", q.get("delimiter") or "",
            q.get("pageToken"), max(max_results, 1), q.get("startOffset") or "",
            q.get("endOffset") or "", q.get("includeTrailingDelimiter") == "true",
            q.get("matchGlob") or "")
        listing["items"] = [public(r, item) for item in listing["items"]]
        return listing

    def media(r: Request):
        bucket, name = r.params["bucket"], r.params["object"]
        resource = store.get_object(bucket, name)
        if r.arg("generation") and r.arg("generation") != resource["generation"]:
            raise errors.no_object(bucket, name)
        data, span = store.read_range(bucket, name, r.headers.get("range"))
        headers = {"Content-Type": resource["contentType"], **_object_headers(resource)}
        if span is None:
            return Response(200, data, headers)
        start, end, size = span
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return Response(206, data, headers)

    def get_object(r: Request):
        if r.arg("alt") == "media":
            return media(r)
        store.check_preconditions(r.params["bucket"], r.params["object"], _query(r))
        return public(r, store.get_object(r.params["bucket"], r.params["object"]))

    def delete_object(r: Request):
        store.delete_object(r.params["bucket"], r.params["object"], _query(r))
        return Response(204)

    def patch_object(r: Request):
        return public(r, store.patch_object(r.params["bucket"], r.params["object"],
                                               _body(r), _query(r)))

    def copy(r: Request):
        p = r.params
        return public(r, store.copy_object(p["bucket"], p["object"], p["dbucket"],
                                              p["dobject"], _body(r), _dest_conditions(r)))

    def rewrite(r: Request):
        resource = copy(r)
        return {"kind": "storage#rewriteResponse", "totalBytesRewritten": resource["size"],
                "objectSize": resource["size"], "done": True, "resource": resource}

    def compose(r: Request):
        return public(r, store.compose(r.params["bucket"], r.params["object"], _body(r),
                                          _query(r)))

    destination = r"/b/(?P<dbucket>[^/]+)/o/(?P<dobject>.+)"
    add("POST", OBJECT + r"/copyTo" + destination, copy)
    add("POST", OBJECT + r"/rewriteTo" + destination, rewrite)
    add("POST", OBJECT + r"/compose", compose)
    add("GET", BUCKET + r"/o", list_objects)
    add("GET", OBJECT, get_object)
    add("DELETE", OBJECT, delete_object)
    add("PATCH", OBJECT, patch_object)
    add("PUT", OBJECT, patch_object)
    add("GET", r"/download" + OBJECT, media)

    # ---- uploads
    def upload(r: Request):
        bucket, q = r.params["bucket"], _query(r)
        kind = q.get("uploadType", "media")
        if kind == "media":
            if not q.get("name"):
                raise errors.gcs_error(400, "required", "Required")
            fields = {"contentType": r.headers.get("content-type")}
            return public(r, store.put_object(bucket, q["name"], r.body, fields, q))
        if kind == "multipart":
            metadata, data = _parse_multipart(r)
            name = metadata.get("name") or q.get("name")
            if not name:
                raise errors.gcs_error(400, "required", "Required")
            return public(r, store.put_object(bucket, name, data, metadata, q))
        if kind == "resumable":
            metadata = _body(r)
            name = metadata.get("name") or q.get("name")
            if not name:
                raise errors.gcs_error(400, "required", "Required")
            if "contentType" not in metadata and r.headers.get("x-upload-content-type"):
                metadata["contentType"] = r.headers["x-upload-content-type"]
            upload_id = store.start_upload(bucket, name, metadata, q)
            location = (f"{r.base_url}/upload/storage/v1/b/{quote(bucket)}/o?"
                        f"uploadType=resumable&upload_id={upload_id}")
            return Response(200, None, {"Location": location, "X-GUploader-UploadID": upload_id})
        raise errors.invalid(f"Invalid uploadType: {kind}")

    def upload_chunk(r: Request):
        upload_id = r.arg("upload_id") or ""
        have, resource = store.upload_chunk(upload_id, r.body, r.headers.get("content-range"))
        if resource is not None:
            return public(r, resource)
        headers = {"Range": f"bytes=0-{have - 1}"} if have else {}
        return Response(308, None, headers)

    def cancel_upload(r: Request):
        store.cancel_upload(r.arg("upload_id") or "")
        return Response(499, None)

    add("POST", r"/upload" + BUCKET + r"/o", upload)
    add("PUT", r"/upload" + BUCKET + r"/o", upload_chunk)
    add("POST", r"/upload" + BUCKET + r"/o/resumable", upload_chunk)
    add("DELETE", r"/upload" + BUCKET + r"/o", cancel_upload)


def _names_checked(handler):
    """Cloud Storage's 400 for a name it refuses, on every route."""
    def call(r: Request):
        try:
            return handler(r)
        except InvalidName as exc:
            raise errors.invalid(str(exc)) from None
    return call


def _dest_conditions(r: Request) -> dict:
    """Copy/rewrite name destination conditions ifGenerationMatch etc. (source ones prefixed)."""
    return {k: v[0] for k, v in r.query.items() if k.startswith("if") and
            not k.startswith("ifSource")}
