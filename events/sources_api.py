"""REST API for sources (Admin and Marketing): the write keys and snippets to install.

Kept apart from events/api.py, which is the public tracking API (plain Django views on the hot
path, authenticated by write key); this one is a DRF view behind token/session auth."""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.views import APIView

from events import permissions, selectors, tracking
from events.models import SourceKind


class SourceListApi(APIView):
    pagination_class = LimitOffsetPagination

    @extend_schema_serializer(component_name="Source")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        kind = serializers.ChoiceField(choices=SourceKind.choices)
        enabled = serializers.BooleanField()
        allowed_origins = serializers.ListField(child=serializers.CharField())
        write_key = serializers.CharField()
        snippet = serializers.SerializerMethodField()
        created_at = serializers.DateTimeField()

        def get_snippet(self, source) -> str:
            return tracking.snippet(write_key=source.write_key, host=self.context["host"])

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request):
        # Sales may see that sources exist on the page, but the API's point is the keys.
        permissions.ensure_can_manage_sources(request.user)
        sources = selectors.source_list()
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(sources, request, view=self)
        context = {"host": tracking.public_host(request)}
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True, context=context).data)
