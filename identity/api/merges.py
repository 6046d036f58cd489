"""REST API for the merge log: /api/v1/identity/merges/ and the Admin's split."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts.models import MergeReason
from core.api import Pagination, paginated_response
from identity import selectors
from identity.services import merging


@extend_schema_serializer(component_name="ContactMerge")
class MergeOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    winner = serializers.IntegerField(source="winner_id")
    loser = serializers.IntegerField(source="loser_id")
    reason = serializers.ChoiceField(choices=MergeReason.choices)
    event_id = serializers.IntegerField(allow_null=True)
    actor = serializers.IntegerField(source="actor_id", allow_null=True)
    created_at = serializers.DateTimeField()
    split_at = serializers.DateTimeField(allow_null=True)
    split_by = serializers.IntegerField(source="split_by_id", allow_null=True)
    field_choices = serializers.DictField()
    moved = serializers.DictField()


class MergeListApi(APIView):
    pagination_class = Pagination

    class FilterSerializer(serializers.Serializer):
        contact = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(parameters=[FilterSerializer], responses=MergeOutputSerializer(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        merges = selectors.merge_list(user=request.user, contact_id=filters.validated_data.get("contact"))
        return paginated_response(MergeOutputSerializer, merges, request=request, view=self)


class MergeDetailApi(APIView):
    @extend_schema(responses=MergeOutputSerializer)
    def get(self, request, pk: int):
        return Response(MergeOutputSerializer(selectors.merge_get(user=request.user, merge_id=pk)).data)


class MergeSplitApi(APIView):
    @extend_schema(
        request=None,
        responses={
            200: MergeOutputSerializer,
            403: OpenApiResponse(description="Only Admins split merges."),
            409: OpenApiResponse(description="Already split, the winner was merged since, or rows conflict."),
        },
    )
    def post(self, request, pk: int):
        merge = selectors.merge_get(user=request.user, merge_id=pk)
        return Response(MergeOutputSerializer(merging.merge_split(merge=merge, actor=request.user)).data)
