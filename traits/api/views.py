"""REST API for computed traits: definitions CRUD, and each contact's (or company's) values."""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts import selectors as contact_selectors
from core.api import Pagination, paginated_response
from traits import permissions, selectors, services
from traits.models import EventType, TraitKind


@extend_schema_serializer(component_name="TraitDefinition")
class TraitOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=TraitKind.choices)
    event_type = serializers.ChoiceField(choices=EventType.choices)
    event_name = serializers.CharField()
    property = serializers.CharField(source="property_key")
    conditions = serializers.JSONField()
    window_days = serializers.IntegerField(allow_null=True)
    source = serializers.IntegerField(source="source_id", allow_null=True)
    computed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class _Conditions(serializers.JSONField):
    """[{property, operator, value}]: checked by the service, whose 400 names the bad one."""


@extend_schema_serializer(component_name="TraitDefinitionPatch")
class TraitPatchSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=50, required=False)
    name = serializers.CharField(max_length=100, required=False)
    kind = serializers.ChoiceField(choices=TraitKind.choices, required=False)
    event_type = serializers.ChoiceField(choices=EventType.choices, required=False)
    event_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    property = serializers.CharField(max_length=100, required=False, allow_blank=True)
    conditions = _Conditions(required=False)
    window_days = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=3650)
    source = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2**63 - 1)


@extend_schema_serializer(component_name="TraitDefinitionInput")
class TraitInputSerializer(TraitPatchSerializer):
    key = serializers.CharField(max_length=50)
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=TraitKind.choices)


class TraitListApi(APIView):
    pagination_class = Pagination

    @extend_schema(responses=TraitOutputSerializer(many=True))
    def get(self, request):
        traits = selectors.trait_list(user=request.user)
        return paginated_response(TraitOutputSerializer, traits, request=request, view=self)

    @extend_schema(request=TraitInputSerializer, responses={201: TraitOutputSerializer})
    def post(self, request):
        permissions.ensure_can_manage(request.user)
        data = TraitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        trait = services.trait_definition_create(actor=request.user, values=data.validated_data)
        return Response(TraitOutputSerializer(trait).data, status=status.HTTP_201_CREATED)


class TraitDetailApi(APIView):
    @extend_schema(responses=TraitOutputSerializer)
    def get(self, request, pk: int):
        return Response(TraitOutputSerializer(selectors.trait_get(user=request.user, trait_id=pk)).data)

    @extend_schema(request=TraitPatchSerializer, responses=TraitOutputSerializer)
    def patch(self, request, pk: int):
        trait = selectors.trait_get(user=request.user, trait_id=pk)
        permissions.ensure_can_manage(request.user)
        data = TraitPatchSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        trait = services.trait_definition_update(actor=request.user, trait=trait, values=data.validated_data)
        return Response(TraitOutputSerializer(trait).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        trait = selectors.trait_get(user=request.user, trait_id=pk)
        services.trait_definition_delete(actor=request.user, trait=trait)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_serializer(component_name="TraitValue")
class TraitValueSerializer(serializers.Serializer):
    key = serializers.CharField(source="trait.key")
    name = serializers.CharField(source="trait.name")
    kind = serializers.ChoiceField(source="trait.kind", choices=TraitKind.choices)
    value = serializers.JSONField(allow_null=True, help_text="A number, text, a list of text, or null.")
    computed_at = serializers.DateTimeField(allow_null=True)


class ContactTraitValuesApi(APIView):
    """Every contact-level trait with this contact's value (counters without events: 0)."""

    @extend_schema(responses=TraitValueSerializer(many=True))
    def get(self, request, pk: int):
        contact = contact_selectors.contact_get(user=request.user, contact_id=pk)
        rows = selectors.contact_trait_rows(user=request.user, contact_id=contact.pk)
        return Response(TraitValueSerializer(rows, many=True).data)


class CompanyTraitValuesApi(APIView):
    """Every account-level trait with this company's value."""

    @extend_schema(responses=TraitValueSerializer(many=True))
    def get(self, request, pk: int):
        company = contact_selectors.company_get(user=request.user, company_id=pk)
        rows = selectors.company_trait_rows(user=request.user, company_id=company.pk)
        return Response(TraitValueSerializer(rows, many=True).data)
