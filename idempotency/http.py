"""``Idempotency-Key`` on the API's POSTs that create something: ``@idempotent`` under DRF's
``@api_view`` (so that authentication, permissions and throttles have run), on synchronous and
asynchronous views alike.

Without the header a request is handled as ever. With it, the first request with the key is
handled and its answer kept; a retry from the same caller with the same method, path and body gets
that answer again (its status and body, with ``Idempotent-Replayed: true``) and creates nothing;
the key with another request is a 422; a retry while the first is still handled waits for its
answer (``IDEMPOTENCY_WAIT_SECONDS``), then gets a 409.

What is kept: every answer the view returns (a preview that was not ready in time too: a retry
is pointed at the same preview). An error the view raises means that it created nothing (invalid
input, a limit, an outage, a failed preview): the key is given back, and a retry is handled anew.
"""

import functools
import hashlib

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.http import QueryDict
from rest_framework import exceptions, permissions, status
from rest_framework.response import Response

from hydrilla.callers import caller
from idempotency import services

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
IN_FLIGHT_RETRY_AFTER_SECONDS = 1


class InvalidKey(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = f"{HEADER} must be 1 to 255 visible ASCII characters"


class KeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = f"This {HEADER} was already used with another request"


class StillInFlight(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = f"A request with this {HEADER} is still being handled: retry in a moment"

    def __init__(self):
        super().__init__()
        self.wait = IN_FLIGHT_RETRY_AFTER_SECONDS  # DRF answers it as Retry-After


def idempotent(view=None, *, unkept: tuple[str, ...] = ()):
    """The view, honouring ``Idempotency-Key`` (see the module's description). ``unkept``: fields
    of the answer that are never stored (a secret shown once): a replay has them null."""
    if view is None:
        return functools.partial(idempotent, unkept=unkept)

    def keep(claimed, response) -> None:
        body = response.data
        if unkept and isinstance(body, dict):
            body = {**body, **dict.fromkeys(set(unkept) & set(body))}
        services.finish(claimed, response.status_code, body)

    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def asynchronous(request, *args, **kwargs):
            claimed = await sync_to_async(_begin, thread_sensitive=False)(request)
            if claimed is None:
                return await view(request, *args, **kwargs)
            if isinstance(claimed, Response):
                return claimed
            try:
                response = await view(request, *args, **kwargs)
            except BaseException:
                await sync_to_async(services.release, thread_sensitive=False)(claimed)
                raise
            await sync_to_async(keep, thread_sensitive=False)(claimed, response)
            return response

        return asynchronous

    @functools.wraps(view)
    def synchronous(request, *args, **kwargs):
        claimed = _begin(request)
        if claimed is None:
            return view(request, *args, **kwargs)
        if isinstance(claimed, Response):
            return claimed
        try:
            response = view(request, *args, **kwargs)
        except BaseException:
            services.release(claimed)
            raise
        keep(claimed, response)
        return response

    return synchronous


def _begin(request):
    """None without a key (or for a read: only what creates is kept); the kept answer to give
    again; or the claimed row."""
    key = request.headers.get(HEADER)
    if key is None or request.method in permissions.SAFE_METHODS:
        return None
    if not services.is_valid_key(key):
        raise InvalidKey()
    try:
        claimed = services.begin(caller(request), key, _fingerprint(request))
    except services.KeyReused:
        raise KeyReused() from None
    except services.StillInFlight:
        raise StillInFlight() from None
    if isinstance(claimed, services.Answer):
        return Response(claimed.body, status=claimed.status, headers={REPLAYED_HEADER: "true"})
    return claimed


def _fingerprint(request) -> str:
    data = request.data
    if isinstance(data, QueryDict):  # a form or multipart body: every value of every field
        data = {field: data.getlist(field) for field in data if field not in request.FILES}
    files = [
        (field, _sha256(upload))
        for field in request.FILES
        for upload in request.FILES.getlist(field)
    ]
    return services.fingerprint(request.method, request.path, data, files)


def _sha256(upload) -> str:
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()
