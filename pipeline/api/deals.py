"""REST API for pipelines and deals: parse input, call services or selectors, render."""

from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts.models import Company, Contact
from core.api import OwnerFilterField, Pagination, owner_field, paginated_response
from core.errors import NotFound
from core.params import parse_id
from pipeline import permissions, selectors, services
from pipeline.models import DealStatus, Stage


@extend_schema_serializer(component_name="Stage")
class StageOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pipeline = serializers.IntegerField(source="pipeline_id")
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


@extend_schema_serializer(component_name="StageInput")
class StageInputSerializer(serializers.Serializer):
    """Shape only; the service checks the values (a unique name, 0-100 %, rotting days)."""

    name = serializers.CharField(allow_blank=True)
    probability = serializers.IntegerField(required=False, help_text="Win probability, 0-100 %.")
    rotting_days = serializers.IntegerField(
        allow_null=True, required=False, help_text="Idle days before a deal rots; null or 0 for never."
    )


@extend_schema_serializer(component_name="PipelineInput")
class PipelineInputSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True)
    stages = StageInputSerializer(
        many=True, required=False, help_text="In order; left out, the default five stages (POST only)."
    )


class PipelineListApi(APIView):
    InputSerializer = PipelineInputSerializer
    OutputSerializer = PipelineOutputSerializer

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request):
        pipelines = selectors.pipeline_list(user=request.user)
        return Response(self.OutputSerializer(pipelines, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        """Admin only."""
        permissions.ensure_can_configure(request.user)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        stages = data.validated_data.get("stages")
        pipeline = services.pipeline_create(
            actor=request.user,
            name=data.validated_data["name"],
            stages=[dict(stage) for stage in stages] if stages is not None else None,
        )
        pipeline = selectors.pipeline_get(user=request.user, pipeline_id=pipeline.pk)
        return Response(self.OutputSerializer(pipeline).data, status=status.HTTP_201_CREATED)


class PipelineDetailApi(APIView):
    OutputSerializer = PipelineOutputSerializer

    @extend_schema_serializer(component_name="PipelineUpdate")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(allow_blank=True, required=False)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, pk: int):
        pipeline = selectors.pipeline_get(user=request.user, pipeline_id=pk)
        return Response(self.OutputSerializer(pipeline).data)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def patch(self, request, pk: int):
        """Rename (Admin only). Stages have their own endpoints."""
        pipeline = selectors.pipeline_get(user=request.user, pipeline_id=pk)
        permissions.ensure_can_configure(request.user)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if "name" in data.validated_data:
            services.pipeline_rename(actor=request.user, pipeline=pipeline, name=data.validated_data["name"])
        pipeline = selectors.pipeline_get(user=request.user, pipeline_id=pk)
        return Response(self.OutputSerializer(pipeline).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        """Admin only. 409 while the pipeline holds deals (`deal_count`), or if it is the only one."""
        pipeline = selectors.pipeline_get(user=request.user, pipeline_id=pk)
        services.pipeline_delete(actor=request.user, pipeline=pipeline)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PipelineStageListApi(APIView):
    InputSerializer = StageInputSerializer
    OutputSerializer = StageOutputSerializer

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request, pk: int):
        pipeline = selectors.pipeline_get(user=request.user, pipeline_id=pk)
        return Response(self.OutputSerializer(pipeline.stages.all(), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request, pk: int):
        """Add a stage at the end of the pipeline (Admin only)."""
        pipeline = selectors.pipeline_get(user=request.user, pipeline_id=pk)
        permissions.ensure_can_configure(request.user)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        stage = services.stage_create(actor=request.user, pipeline=pipeline, **data.validated_data)
        return Response(self.OutputSerializer(stage).data, status=status.HTTP_201_CREATED)


class PipelineStageOrderApi(APIView):
    OutputSerializer = PipelineOutputSerializer

    @extend_schema_serializer(component_name="StageOrder")
    class InputSerializer(serializers.Serializer):
        stages = serializers.ListField(
            child=serializers.IntegerField(), help_text="The pipeline's stage ids, each once, in order."
        )

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def put(self, request, pk: int):
        """Reorder the stages (Admin only): 400 unless the list is exactly the pipeline's stages."""
        pipeline = selectors.pipeline_get(user=request.user, pipeline_id=pk)
        permissions.ensure_can_configure(request.user)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.stage_reorder(actor=request.user, pipeline=pipeline, stage_ids=data.validated_data["stages"])
        pipeline = selectors.pipeline_get(user=request.user, pipeline_id=pk)
        return Response(self.OutputSerializer(pipeline).data)


class StageDetailApi(APIView):
    OutputSerializer = StageOutputSerializer

    @extend_schema_serializer(component_name="StageUpdate")
    class InputSerializer(StageInputSerializer):
        name = serializers.CharField(allow_blank=True, required=False)

    class DeleteSerializer(serializers.Serializer):
        move_deals_to = serializers.CharField(
            required=False, help_text="A stage of the same pipeline to move the deleted stage's deals to."
        )

        def validate_move_deals_to(self, value: str) -> int:
            if (stage_id := parse_id(value.strip())) is None:
                raise serializers.ValidationError("Expected a stage id.")
            return stage_id

    @extend_schema(responses=OutputSerializer)
    def get(self, request, pk: int):
        stage = selectors.stage_get(user=request.user, stage_id=pk)
        return Response(self.OutputSerializer(stage).data)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def patch(self, request, pk: int):
        """Rename, or change the probability or rotting days (Admin only)."""
        stage = selectors.stage_get(user=request.user, stage_id=pk)
        permissions.ensure_can_configure(request.user)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = {"name": stage.name, "probability": stage.probability, "rotting_days": stage.rotting_days}
        stage = services.stage_update(actor=request.user, stage=stage, **(values | data.validated_data))
        return Response(self.OutputSerializer(stage).data)

    @extend_schema(parameters=[DeleteSerializer], responses={204: None})
    def delete(self, request, pk: int):
        """Admin only. A stage holding deals answers 409 (with `deal_count`) unless `move_deals_to`
        names another stage of its pipeline to move them to; the last stage of a pipeline stays."""
        stage = selectors.stage_get(user=request.user, stage_id=pk)
        permissions.ensure_can_configure(request.user)
        params = self.DeleteSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        target = None
        if (target_id := params.validated_data.get("move_deals_to")) is not None:
            try:
                target = selectors.stage_get(user=request.user, stage_id=target_id)
            except NotFound:
                raise serializers.ValidationError({"move_deals_to": [f"No stage {target_id}."]}) from None
        services.stage_delete(actor=request.user, stage=stage, move_deals_to=target)
        return Response(status=status.HTTP_204_NO_CONTENT)


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
    lost_note = serializers.CharField()
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
    lost_note = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text='With status lost; required when the lost reason needs a note ("Other", as installed).',
    )


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
        closing = [values.pop(name, "") for name in ("lost_reason", "lost_note")]
        if values.pop("status", DealStatus.OPEN) != DealStatus.OPEN or any(closing):
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
        reason, note = values.pop("lost_reason", ""), values.pop("lost_note", "")
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
                services.deal_mark_lost(deal=deal, actor=request.user, reason=reason, note=note)
        deal = selectors.deal_get(user=request.user, deal_id=pk)
        return Response(self.OutputSerializer(deal).data)
