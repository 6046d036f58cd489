"""REST API for predictive models: CRUD, training on demand, each contact's predictions."""

from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts import selectors as contact_selectors
from core.api import Pagination, paginated_response
from pipeline.models import Pipeline
from predictions import permissions, selectors, services
from predictions.models import Algorithm, Goal, ModelStatus, Verdict


@extend_schema_serializer(component_name="PredictionQuality")
class QualitySerializer(serializers.Serializer):
    auc = serializers.FloatField()
    log_loss = serializers.FloatField()
    lift_top_decile = serializers.FloatField()
    positives = serializers.IntegerField()
    negatives = serializers.IntegerField()


@extend_schema_serializer(component_name="PredictionModel")
class ModelOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    goal = serializers.ChoiceField(choices=Goal.choices)
    event_name = serializers.CharField()
    pipeline = serializers.IntegerField(source="pipeline_id", allow_null=True)
    horizon_days = serializers.IntegerField()
    min_positives = serializers.IntegerField()
    min_negatives = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ModelStatus.choices)
    status_reason = serializers.CharField()
    algorithm = serializers.ChoiceField(choices=[("", "—"), *Algorithm.choices])
    verdict = serializers.ChoiceField(choices=[("", "—"), *Verdict.choices])
    quality = serializers.SerializerMethodField()
    train_positives = serializers.SerializerMethodField()
    train_negatives = serializers.SerializerMethodField()
    typical_value = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    typical_value_basis = serializers.CharField()
    trained_at = serializers.DateTimeField(allow_null=True)
    scored_at = serializers.DateTimeField(allow_null=True)
    scored_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(QualitySerializer(allow_null=True))
    def get_quality(self, obj) -> dict | None:
        chosen = (obj.metrics or {}).get("chosen")
        return QualitySerializer(chosen).data if chosen else None

    def get_train_positives(self, obj) -> int | None:
        return (obj.metrics or {}).get("train_positives")

    def get_train_negatives(self, obj) -> int | None:
        return (obj.metrics or {}).get("train_negatives")


@extend_schema_serializer(component_name="PredictionModelInput")
class ModelInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    goal = serializers.ChoiceField(choices=Goal.choices, default=Goal.DEAL_WON)
    event_name = serializers.CharField(max_length=200, allow_blank=True, required=False, default="")
    pipeline = serializers.PrimaryKeyRelatedField(
        queryset=Pipeline.objects.all(), allow_null=True, required=False
    )
    horizon_days = serializers.IntegerField(min_value=1, max_value=365, default=30)
    min_positives = serializers.IntegerField(min_value=1, max_value=1_000_000, default=100)
    min_negatives = serializers.IntegerField(min_value=1, max_value=1_000_000, default=100)


class PredictionModelListApi(APIView):
    pagination_class = Pagination
    InputSerializer = ModelInputSerializer
    OutputSerializer = ModelOutputSerializer

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request):
        models = selectors.prediction_model_list(user=request.user)
        return paginated_response(self.OutputSerializer, models, request=request, view=self)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        permissions.ensure_can_manage(request.user)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model = services.prediction_model_create(actor=request.user, **data.validated_data)
        return Response(self.OutputSerializer(model).data, status=status.HTTP_201_CREATED)


class PredictionModelDetailApi(APIView):
    OutputSerializer = ModelOutputSerializer

    @extend_schema_serializer(component_name="PredictionModelPatch")
    class PatchSerializer(ModelInputSerializer):
        pass

    @extend_schema(responses=OutputSerializer)
    def get(self, request, pk: int):
        return Response(
            self.OutputSerializer(selectors.prediction_model_get(user=request.user, model_id=pk)).data
        )

    @extend_schema(request=PatchSerializer, responses=OutputSerializer)
    def patch(self, request, pk: int):
        model = selectors.prediction_model_get(user=request.user, model_id=pk)
        permissions.ensure_can_manage(request.user)
        data = self.PatchSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        model = services.prediction_model_update(actor=request.user, model=model, **data.validated_data)
        return Response(self.OutputSerializer(model).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        model = selectors.prediction_model_get(user=request.user, model_id=pk)
        services.prediction_model_delete(actor=request.user, model=model)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PredictionModelTrainApi(APIView):
    """Queue a training run; the model's `status` and `quality` tell the outcome."""

    @extend_schema_serializer(component_name="PredictionTrainQueued")
    class OutputSerializer(serializers.Serializer):
        queued = serializers.BooleanField()

    @extend_schema(request=None, responses={202: OutputSerializer})
    def post(self, request, pk: int):
        model = selectors.prediction_model_get(user=request.user, model_id=pk)
        services.prediction_model_train_request(actor=request.user, model=model)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)


@extend_schema_serializer(component_name="PredictionReason")
class ReasonSerializer(serializers.Serializer):
    feature = serializers.CharField()
    label = serializers.CharField()
    value = serializers.FloatField()
    contribution = serializers.FloatField(
        help_text="Logistic regression: log-odds (coefficient x standardised value). Gradient boosting: "
        "probability minus the probability with this feature at its training mean."
    )


class ContactPredictionsApi(APIView):
    """A contact's predictions under every published model, most likely first, with the top
    contributing features."""

    @extend_schema_serializer(component_name="ContactPrediction")
    class OutputSerializer(serializers.Serializer):
        model = serializers.IntegerField(source="model_id")
        model_name = serializers.CharField(source="model.name")
        algorithm = serializers.CharField(source="model.algorithm")
        probability = serializers.FloatField()
        percentile = serializers.FloatField()
        expected_value = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
        explanation = ReasonSerializer(many=True)
        scored_at = serializers.DateTimeField()

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request, pk: int):
        contact = contact_selectors.contact_get(user=request.user, contact_id=pk)
        rows = selectors.contact_predictions(user=request.user, contact=contact)
        return Response(self.OutputSerializer(rows, many=True).data)
