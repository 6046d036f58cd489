"""REST API for pipelines and deals: parse input, call services or selectors, render."""

from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from cdp_crm.api import OwnerFilterField, Pagination, owner_field, paginated_response
from contacts.models import Company, Contact
from pipeline import permissions, selectors, services
from pipeline.models import DealStatus, Stage


@extend_schema_serializer(component_name="Stage")
class StageOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    position = serializers.IntegerField()
    probability = serializers.IntegerField()
    rotting_days = serializers.IntegerField(allow_null=True)


@extend_schema_serializer(component_name="Pipeline")
class PipelineOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    position = serializers.IntegerField()
    stages = StageOutputSerializer(many=True, source="stages.all")


class PipelineListApi(APIView):
    OutputSerializer = PipelineOutputSerializer

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request):
        pipelines = selectors.pipeline_list(user=request.user)
        return Response(self.OutputSerializer(pipelines, many=True).data)


@extend_schema_serializer(component_name="Deal")
class DealOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    pipeline = serializers.IntegerField(source="pipeline_id")
    stage = serializers.IntegerField(source="stage_id")
    stage_name = serializers.CharField(source="stage.name")
    status = serializers.ChoiceField(choices=DealStatus.choices)
    lost_reason = serializers.CharField()
    contact = serializers.IntegerField(source="contact_id", allow_null=True)
    company = serializers.IntegerField(source="company_id", allow_null=True)
    participants = serializers.SerializerMethodField()
    owner = serializers.IntegerField(source="owner_id", allow_null=True)
    expected_close_date = serializers.DateField(allow_null=True)
    stage_entered_at = serializers.DateTimeField(allow_null=True)
    last_activity_at = serializers.DateTimeField(allow_null=True)
    next_activity_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    attribution = serializers.DictField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_participants(self, deal) -> list[int]:
        return [p.pk for p in deal.participants.all()]


@extend_schema_serializer(component_name="DealInput")
class DealInputSerializer(serializers.Serializer):
    """Shape only; validating the values is the service's job."""

    title = serializers.CharField(allow_blank=True, required=False)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, required=False)
    currency = serializers.CharField(required=False)
    stage = serializers.PrimaryKeyRelatedField(queryset=Stage.objects.all(), required=False)
    contact = serializers.PrimaryKeyRelatedField(
        queryset=Contact.objects.filter(merged_into=None), allow_null=True, required=False
    )
    company = serializers.PrimaryKeyRelatedField(
        queryset=Company.objects.all(), allow_null=True, required=False
    )
    participants = serializers.PrimaryKeyRelatedField(
        queryset=Contact.objects.filter(merged_into=None), many=True, required=False
    )
    owner = owner_field()
    expected_close_date = serializers.DateField(allow_null=True, required=False)
    status = serializers.ChoiceField(
        choices=DealStatus.choices,
        required=False,
        help_text="PATCH only: won, lost (with lost_reason) or open.",
    )
    lost_reason = serializers.CharField(required=False, allow_blank=True)


class DealListApi(APIView):
    pagination_class = Pagination

    @extend_schema_serializer(component_name="DealFilter")
    class FilterSerializer(serializers.Serializer):
        pipeline = serializers.IntegerField(required=False)
        stage = serializers.IntegerField(required=False)
        owner = OwnerFilterField(required=False, help_text='A user id, "me" or "none" (unowned).')
        status = serializers.ChoiceField(choices=DealStatus.choices, required=False)

    InputSerializer = DealInputSerializer
    OutputSerializer = DealOutputSerializer

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        deals = selectors.deal_list(user=request.user, filters=filters.validated_data)
        return paginated_response(self.OutputSerializer, deals, request=request, view=self)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        # permission before validation: a role that may not create learns nothing from form errors
        permissions.ensure_can_create_deal(request.user)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "stage" not in values:
            raise serializers.ValidationError({"stage": ["A new deal needs a stage."]})
        if values.pop("status", DealStatus.OPEN) != DealStatus.OPEN or values.pop("lost_reason", ""):
            raise serializers.ValidationError({"status": ["A new deal is open; win or lose it with PATCH."]})
        deal = services.deal_create(actor=request.user, title=values.pop("title", ""), **values)
        deal = selectors.deal_get(user=request.user, deal_id=deal.pk)
        return Response(self.OutputSerializer(deal).data, status=status.HTTP_201_CREATED)


class DealDetailApi(APIView):
    InputSerializer = DealInputSerializer
    OutputSerializer = DealOutputSerializer

    @extend_schema(responses=OutputSerializer)
    def get(self, request, pk: int):
        deal = selectors.deal_get(user=request.user, deal_id=pk)
        return Response(self.OutputSerializer(deal).data)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def patch(self, request, pk: int):
        """Properties, `stage` (recorded as a stage change, like a drag on the board) and
        `status` (won; lost with `lost_reason`; open reopens) in one all-or-nothing change."""
        deal = selectors.deal_get(user=request.user, deal_id=pk)
        # before validation, and even for an empty PATCH (which changes nothing but answered 200)
        permissions.ensure_can_change_deal(request.user, deal)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        stage, new_status = values.pop("stage", None), values.pop("status", None)
        reason = values.pop("lost_reason", "")
        with transaction.atomic():
            if new_status == DealStatus.OPEN:
                deal = services.deal_reopen(deal=deal, actor=request.user)
            if values:
                deal = services.deal_update(deal=deal, actor=request.user, **values)
            if stage is not None:
                deal = services.deal_move(deal=deal, to_stage=stage, actor=request.user)
            if new_status == DealStatus.WON:
                services.deal_mark_won(deal=deal, actor=request.user)
            elif new_status == DealStatus.LOST:
                services.deal_mark_lost(deal=deal, actor=request.user, reason=reason)
        deal = selectors.deal_get(user=request.user, deal_id=pk)
        return Response(self.OutputSerializer(deal).data)
