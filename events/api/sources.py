"""REST API for sources (Admin and Marketing): the write keys and snippets to install.

Kept apart from events/ingest/endpoint.py, which is the public tracking API (plain Django views
on the hot path, authenticated by write key); this one is a DRF view behind token/session auth."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from events import permissions, selectors, services, tracking
from events.models import Source, SourceKind
from events.services.sources import MAX_RETENTION_DAYS


class SourceListApi(APIView):
    pagination_class = LimitOffsetPagination

    @extend_schema_serializer(component_name="Source")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        kind = serializers.ChoiceField(choices=SourceKind.choices)
        enabled = serializers.BooleanField()
        allowed_origins = serializers.ListField(child=serializers.CharField())
        require_consent = serializers.BooleanField()
        honor_gpc = serializers.BooleanField()
        retention_days = serializers.IntegerField(allow_null=True)
        write_key = serializers.CharField()
        snippet = serializers.SerializerMethodField()
        created_at = serializers.DateTimeField()

        def get_snippet(self, source) -> str:
            return tracking.source_snippet(source, host=self.context["host"])

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request):
        # Sales may see that sources exist on the page, but the API's point is the keys.
        permissions.ensure_can_manage_sources(request.user)
        sources = selectors.source_list()
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(sources, request, view=self)
        context = {"host": tracking.public_host(request)}
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True, context=context).data)


class SourcePrivacyApi(APIView):
    """`GET`/`PATCH /api/v1/sources/{id}/privacy/`: the consent switches the snippet carries and
    the event retention. PATCH takes any of the three fields; the snippet changes with the first two."""

    @extend_schema_serializer(component_name="SourcePrivacy")
    class PrivacySerializer(serializers.Serializer):
        require_consent = serializers.BooleanField(required=False)
        honor_gpc = serializers.BooleanField(required=False)
        retention_days = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, max_value=MAX_RETENTION_DAYS
        )

    def _source(self, request, pk: int) -> Source:
        permissions.ensure_can_manage_sources(request.user)
        return get_object_or_404(Source, pk=pk)

    def _answer(self, source: Source) -> Response:
        return Response(
            {
                "id": source.pk,
                "require_consent": source.require_consent,
                "honor_gpc": source.honor_gpc,
                "retention_days": source.retention_days,
            }
        )

    @extend_schema(responses=PrivacySerializer)
    def get(self, request, pk: int):
        return self._answer(self._source(request, pk))

    @extend_schema(request=PrivacySerializer, responses=PrivacySerializer)
    def patch(self, request, pk: int):
        source = self._source(request, pk)
        data = self.PrivacySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = {
            "require_consent": source.require_consent,
            "honor_gpc": source.honor_gpc,
            "retention_days": source.retention_days,
            **data.validated_data,
        }
        return self._answer(services.source_privacy_update(actor=request.user, source=source, **values))
