"""REST API for lead scores: score models (CRUD) and a contact's scores with the explanation."""

from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts import selectors as contact_selectors
from core.api import Pagination, paginated_response
from scoring import permissions, selectors, services

RULES_SCHEMA = {"type": "array", "items": {"type": "object", "additionalProperties": True}}


@extend_schema_field(RULES_SCHEMA)
class _RulesField(serializers.JSONField):
    """A JSON array of rules: its shape is checked by the service, whose 400 names the bad rule
    (scoring.definition documents the shapes)."""


@extend_schema_serializer(component_name="ScoreModel")
class ScoreModelOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    fit_rules = _RulesField()
    engagement_rules = _RulesField()
    fit_cap = serializers.IntegerField(allow_null=True)
    engagement_cap = serializers.IntegerField(allow_null=True)
    total_cap = serializers.IntegerField()
    recomputed_at = serializers.DateTimeField(allow_null=True)
    recompute_ms = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="ScoreModelInput")
class ScoreModelInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=500, allow_blank=True, required=False)
    enabled = serializers.BooleanField(required=False, default=True)
    fit_rules = _RulesField(required=False)
    engagement_rules = _RulesField(required=False)
    fit_cap = serializers.IntegerField(min_value=1, max_value=1_000_000, allow_null=True, required=False)
    engagement_cap = serializers.IntegerField(
        min_value=1, max_value=1_000_000, allow_null=True, required=False
    )
    total_cap = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, default=100)


class ScoreModelListApi(APIView):
    pagination_class = Pagination
    OutputSerializer = ScoreModelOutputSerializer
    InputSerializer = ScoreModelInputSerializer

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request):
        models = selectors.score_model_list(user=request.user)
        return paginated_response(self.OutputSerializer, models, request=request, view=self)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        permissions.ensure_can_manage(request.user)  # a refused role gets 403, not a 400 on its input
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model = services.score_model_create(actor=request.user, **data.validated_data)
        return Response(self.OutputSerializer(model).data, status=status.HTTP_201_CREATED)


class ScoreModelDetailApi(APIView):
    OutputSerializer = ScoreModelOutputSerializer

    @extend_schema_serializer(component_name="ScoreModelPatch")
    class PatchSerializer(ScoreModelInputSerializer):
        name = serializers.CharField(max_length=100, required=False)
        enabled = serializers.BooleanField(required=False)
        total_cap = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, pk: int):
        return Response(self.OutputSerializer(selectors.score_model_get(user=request.user, model_id=pk)).data)

    @extend_schema(request=PatchSerializer, responses=OutputSerializer)
    def patch(self, request, pk: int):
        model = selectors.score_model_get(user=request.user, model_id=pk)
        permissions.ensure_can_manage(request.user)
        data = self.PatchSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        model = services.score_model_update(actor=request.user, model=model, **data.validated_data)
        return Response(self.OutputSerializer(model).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        model = selectors.score_model_get(user=request.user, model_id=pk)
        services.score_model_delete(actor=request.user, model=model)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_serializer(component_name="ScoreLine")
class ScoreLineSerializer(serializers.Serializer):
    part = serializers.ChoiceField(choices=["fit", "engagement", "total"])
    label = serializers.CharField()
    points = serializers.IntegerField(help_text="The lines' points add up to the score.")
    rule = serializers.IntegerField(required=False, help_text="The rule's position in its list (0-based).")
    occurrences = serializers.IntegerField(required=False)
    raw = serializers.FloatField(
        required=False, help_text="Points after decay, before the rule's cap and rounding."
    )
    capped = serializers.BooleanField(required=False)
    cap = serializers.BooleanField(required=False, help_text="A cap or floor line, not a rule.")


@extend_schema_serializer(component_name="ContactScore")
class ContactScoreSerializer(serializers.Serializer):
    model_id = serializers.IntegerField(source="model.pk")
    model = serializers.CharField(source="model.name")
    score = serializers.IntegerField()
    fit = serializers.IntegerField()
    engagement = serializers.IntegerField()
    change_week = serializers.IntegerField(help_text="The score now minus its score 7 days ago.")
    updated_at = serializers.DateTimeField(allow_null=True)
    explanation = ScoreLineSerializer(many=True)


class ContactScoresApi(APIView):
    """The contact's score in every enabled model, with the lines that add up to it."""

    OutputSerializer = ContactScoreSerializer

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request, pk: int):
        contact = contact_selectors.contact_get(user=request.user, contact_id=pk)
        scores = selectors.contact_scores(user=request.user, contact_id=contact.pk)
        return Response(self.OutputSerializer(scores, many=True).data)
