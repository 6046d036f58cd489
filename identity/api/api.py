"""REST API of a person's events and identifiers. Read access follows contacts.permissions (anyone
who may read the contact); a merged contact's URLs redirect (308) to the survivor's, as the
contact API does."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts import selectors as contact_selectors
from core.api import PermanentRedirect, merged_contact_redirect
from identity import selectors

_MERGED = OpenApiResponse(
    description="The contact was merged into another: `Location` is the same resource of the survivor."
)


def _merged_redirect(request, contact, url_name: str) -> PermanentRedirect | None:
    if contact.merged_into_id is None:
        return None
    survivor = contact_selectors.contact_surviving(contact=contact)
    return merged_contact_redirect(request, merged_id=contact.pk, survivor_id=survivor.pk, url_name=url_name)


class EventPagination(CursorPagination):
    # A person's history grows without bound: a cursor costs the same at any depth, where OFFSET
    # re-reads every skipped row and a COUNT walks the whole history on every page.
    ordering = ("-timestamp", "-event_id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500


@extend_schema_serializer(component_name="ContactEvent")
class ContactEventOutputSerializer(serializers.Serializer):
    """The event as stored (properties, traits and context untouched) and when it happened."""

    id = serializers.IntegerField(source="event_id")
    message_id = serializers.CharField(source="event.message_id")
    source = serializers.IntegerField(source="event.source_id")
    type = serializers.CharField(source="event.type")
    event = serializers.CharField(source="event.event")
    anonymous_id = serializers.CharField(source="event.anonymous_id")
    user_id = serializers.CharField(source="event.user_id")
    group_id = serializers.CharField(source="event.group_id")
    previous_id = serializers.CharField(source="event.previous_id")
    properties = serializers.JSONField(source="event.properties")
    traits = serializers.JSONField(source="event.traits")
    context = serializers.JSONField(source="event.context")
    timestamp = serializers.DateTimeField(source="event.timestamp")
    sent_at = serializers.DateTimeField(source="event.sent_at", allow_null=True)
    received_at = serializers.DateTimeField(source="event.received_at")
    is_bot = serializers.BooleanField()


class ContactEventListApi(APIView):
    """The person's events, newest first, anonymous history included (cursor pages: follow `next`)."""

    pagination_class = EventPagination

    @extend_schema(responses={200: ContactEventOutputSerializer(many=True), 308: _MERGED})
    def get(self, request, pk: int):
        contact = contact_selectors.contact_get(user=request.user, contact_id=pk)
        if moved := _merged_redirect(request, contact, "api-contact-events"):
            return moved
        events = selectors.contact_event_list(user=request.user, contact=contact)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(ContactEventOutputSerializer(page, many=True).data)


@extend_schema_serializer(component_name="Identity")
class IdentityOutputSerializer(serializers.Serializer):
    kind = serializers.CharField()
    value = serializers.CharField()
    first_event_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class ContactIdentityListApi(APIView):
    """Every identifier linked to the person (a handful: caps bound them), by kind then value."""

    @extend_schema(
        responses={
            200: inline_serializer("IdentityList", {"results": IdentityOutputSerializer(many=True)}),
            308: _MERGED,
        }
    )
    def get(self, request, pk: int):
        contact = contact_selectors.contact_get(user=request.user, contact_id=pk)
        if moved := _merged_redirect(request, contact, "api-contact-identities"):
            return moved
        identities = selectors.contact_identities(user=request.user, contact=contact, limit=None)
        return Response({"results": IdentityOutputSerializer(identities, many=True).data})
