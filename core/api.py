"""Shared REST API plumbing: the exception handler every API view answers through, pagination,
and the owner fields every CRM resource has."""

import json

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.http.response import HttpResponseRedirectBase
from django.urls import reverse
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError
from core.params import parse_id


def exception_handler(exc, context):
    """Map domain and Django exceptions to HTTP codes with a JSON body that says what is wrong."""
    if isinstance(exc, DomainError):
        body = {**exc.data, "detail": exc.message, "code": exc.code}
        if exc.fields:
            body["fields"] = exc.fields
        return Response(body, status=exc.http_status)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError):
        data = response.data
        response.data = {"detail": "Invalid input.", "code": "invalid", "fields": data}
        response.status_code = status.HTTP_400_BAD_REQUEST
    elif response is not None and isinstance(response.data, dict) and "detail" in response.data:
        detail = response.data["detail"]
        response.data["code"] = getattr(detail, "code", None) or "error"
    return response


class Pagination(LimitOffsetPagination):
    # Bounds the rows (and serializer work) one request can ask for; bigger reads page through.
    max_limit = 500


def paginated_response(serializer_class, queryset, *, request, view) -> Response:
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def owner_field():
    """An owner on input: an active user's id, or null for nobody."""
    return serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.filter(is_active=True), allow_null=True, required=False
    )


class OwnerFilterField(serializers.CharField):
    """A user id, "me" (the caller) or "none" (records nobody owns)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data).strip().lower()
        if value in {"me", "none"}:
            return value
        if (user_id := parse_id(value)) is not None:
            return user_id
        raise serializers.ValidationError('Expected a user id, "me" or "none".')


class PermanentRedirect(HttpResponseRedirectBase):
    """A merged record's old API URL answers with this, to the survivor (contacts' and identity's APIs)."""

    # 308, not 301: a client that PATCHes or DELETEs an old URL repeats that on the survivor
    # instead of silently turning it into a GET. A Django redirect (not a DRF Response) so clients
    # and the test client follow it; the JSON body says why for those that do not.
    status_code = status.HTTP_308_PERMANENT_REDIRECT


def merged_contact_redirect(request, *, merged_id: int, survivor_id: int, url_name: str) -> PermanentRedirect:
    """The merged contact's URL `url_name` answered with the survivor's (its query kept), and a
    JSON body saying why: the one rule of every API that takes a contact id."""
    url = request.build_absolute_uri(reverse(url_name, args=[survivor_id]))
    if query := request.META.get("QUERY_STRING"):
        url += "?" + query
    body = {
        "detail": f"Contact {merged_id} was merged into contact {survivor_id}.",
        "code": "merged",
        "id": survivor_id,
    }
    return PermanentRedirect(url, content=json.dumps(body), content_type="application/json")
