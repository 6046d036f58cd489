"""REST API for segments: parse input, call one service or selector, render."""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts.api.views import ContactOutputSerializer
from core.api import Pagination, paginated_response
from segments import permissions, selectors, services
from segments.models import SegmentKind
from segments.services import webhooks


@extend_schema_serializer(component_name="Segment")
class SegmentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    kind = serializers.ChoiceField(choices=SegmentKind.choices)
    definition = serializers.JSONField()
    member_count = serializers.IntegerField()
    last_computed_at = serializers.DateTimeField(allow_null=True)
    last_compute_ms = serializers.IntegerField(allow_null=True)
    error_count = serializers.IntegerField()
    last_error = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class _DefinitionField(serializers.JSONField):
    """Any JSON: its shape is checked by the compiler, whose 400 names the bad node."""


@extend_schema_serializer(component_name="SegmentInput")
class SegmentInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True, required=False, max_length=5000)
    kind = serializers.ChoiceField(choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    definition = _DefinitionField(required=False)


class SegmentListApi(APIView):
    pagination_class = Pagination
    InputSerializer = SegmentInputSerializer
    OutputSerializer = SegmentOutputSerializer

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request):
        segments = selectors.segment_list(user=request.user)
        return paginated_response(self.OutputSerializer, segments, request=request, view=self)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        permissions.ensure_can_manage(request.user)  # a refused role gets 403, not a 400 on its input
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        segment = services.segment_create(actor=request.user, **data.validated_data)
        return Response(self.OutputSerializer(segment).data, status=status.HTTP_201_CREATED)


class SegmentDetailApi(APIView):
    OutputSerializer = SegmentOutputSerializer

    @extend_schema_serializer(component_name="SegmentPatch")
    class PatchSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False)
        description = serializers.CharField(allow_blank=True, required=False, max_length=5000)
        definition = _DefinitionField(required=False)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, pk: int):
        return Response(self.OutputSerializer(selectors.segment_get(user=request.user, segment_id=pk)).data)

    @extend_schema(request=PatchSerializer, responses=OutputSerializer)
    def patch(self, request, pk: int):
        segment = selectors.segment_get(user=request.user, segment_id=pk)
        permissions.ensure_can_manage(request.user)
        data = self.PatchSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        segment = services.segment_update(actor=request.user, segment=segment, **data.validated_data)
        return Response(self.OutputSerializer(segment).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        segment = selectors.segment_get(user=request.user, segment_id=pk)
        services.segment_delete(actor=request.user, segment=segment)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentMembersApi(APIView):
    """Current members, newest first; `count` is the total."""

    pagination_class = Pagination
    OutputSerializer = ContactOutputSerializer

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request, pk: int):
        segment = selectors.segment_get(user=request.user, segment_id=pk)
        contacts = selectors.segment_members(user=request.user, segment=segment)
        return paginated_response(self.OutputSerializer, contacts, request=request, view=self)


class SegmentPreviewApi(APIView):
    """Count and a sample of the contacts an unsaved definition matches."""

    @extend_schema_serializer(component_name="SegmentPreviewInput")
    class InputSerializer(serializers.Serializer):
        definition = _DefinitionField()

    @extend_schema_serializer(component_name="SegmentPreview")
    class OutputSerializer(serializers.Serializer):
        count = serializers.IntegerField()
        sample = ContactOutputSerializer(many=True)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        preview = selectors.segment_preview(user=request.user, definition=data.validated_data["definition"])
        return Response(self.OutputSerializer(preview).data)


@extend_schema_serializer(component_name="SegmentWebhook")
class WebhookOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    on_enter = serializers.BooleanField()
    on_exit = serializers.BooleanField()
    active = serializers.BooleanField()
    allow_private = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class SegmentWebhookListApi(APIView):
    """A segment's webhooks. The signing secret is returned once, in the answer to POST."""

    OutputSerializer = WebhookOutputSerializer

    @extend_schema_serializer(component_name="SegmentWebhookInput")
    class InputSerializer(serializers.Serializer):
        url = serializers.CharField(max_length=500)
        on_enter = serializers.BooleanField(default=True)
        on_exit = serializers.BooleanField(default=True)
        allow_private = serializers.BooleanField(default=False, help_text="Admin only.")

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request, pk: int):
        segment = selectors.segment_get(user=request.user, segment_id=pk)
        return Response(
            self.OutputSerializer(
                selectors.segment_webhooks(user=request.user, segment=segment), many=True
            ).data
        )

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request, pk: int):
        segment = selectors.segment_get(user=request.user, segment_id=pk)
        permissions.ensure_can_manage(request.user)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        hook = webhooks.webhook_create(actor=request.user, segment=segment, **data.validated_data)
        return Response(
            {**self.OutputSerializer(hook).data, "secret": hook.secret}, status=status.HTTP_201_CREATED
        )


class SegmentWebhookDetailApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        hook = selectors.webhook_get(user=request.user, webhook_id=pk)
        webhooks.webhook_delete(actor=request.user, webhook=hook)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentDeliveryListApi(APIView):
    """The delivery log of a segment's webhooks, newest first."""

    pagination_class = Pagination

    @extend_schema_serializer(component_name="SegmentWebhookDelivery")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        webhook = serializers.IntegerField(source="webhook_id")
        message_id = serializers.CharField()
        event_type = serializers.CharField()
        status = serializers.CharField()
        attempts = serializers.IntegerField()
        next_attempt_at = serializers.DateTimeField()
        last_status_code = serializers.IntegerField(allow_null=True)
        last_error = serializers.CharField()
        created_at = serializers.DateTimeField()
        delivered_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request, pk: int):
        segment = selectors.segment_get(user=request.user, segment_id=pk)
        deliveries = selectors.webhook_delivery_list(user=request.user, segment=segment)
        return paginated_response(self.OutputSerializer, deliveries, request=request, view=self)
