"""REST API for contacts and companies: parse input, call one service or selector, render."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts import selectors, services
from contacts.models import Company, Contact, LifecycleStage
from core.api import (
    OwnerFilterField,
    Pagination,
    PermanentRedirect,
    merged_contact_redirect,
    owner_field,
    paginated_response,
)

# --- contacts


@extend_schema_serializer(component_name="Contact")
class ContactOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.CharField(allow_null=True)
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    phone = serializers.CharField()
    title = serializers.CharField()
    company = serializers.IntegerField(source="company_id", allow_null=True)
    company_name = serializers.CharField(source="company.name", allow_null=True)
    owner = serializers.IntegerField(source="owner_id", allow_null=True)
    lifecycle_stage = serializers.ChoiceField(choices=LifecycleStage.choices)
    is_identified = serializers.BooleanField()
    tags = serializers.ListField(child=serializers.CharField())
    traits = serializers.DictField()
    custom_fields = serializers.DictField()
    first_seen = serializers.DateTimeField(allow_null=True)
    last_seen = serializers.DateTimeField(allow_null=True)
    attribution = serializers.DictField()
    # Read-only: the latest consent state the person's events carried (contacts/services/consent.py).
    consent = serializers.DictField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="ContactInput")
class ContactInputSerializer(serializers.Serializer):
    """Shape only; normalising and validating the values is the service's job."""

    email = serializers.CharField(allow_null=True, allow_blank=True, required=False)
    first_name = serializers.CharField(allow_blank=True, required=False)
    last_name = serializers.CharField(allow_blank=True, required=False)
    phone = serializers.CharField(allow_blank=True, required=False)
    title = serializers.CharField(allow_blank=True, required=False)
    company = serializers.PrimaryKeyRelatedField(
        queryset=Company.objects.all(), allow_null=True, required=False
    )
    owner = owner_field()
    lifecycle_stage = serializers.ChoiceField(choices=LifecycleStage.choices, required=False)
    tags = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False)
    custom_fields = serializers.DictField(required=False)


class ContactListApi(APIView):
    pagination_class = Pagination

    @extend_schema_serializer(component_name="ContactFilter")
    class FilterSerializer(serializers.Serializer):
        q = serializers.CharField(required=False, allow_blank=True)
        email = serializers.CharField(required=False, allow_blank=True)
        owner = OwnerFilterField(required=False, help_text='A user id, "me" or "none" (unowned).')
        tag = serializers.CharField(required=False, allow_blank=True)
        lifecycle_stage = serializers.ChoiceField(choices=LifecycleStage.choices, required=False)
        company = serializers.IntegerField(required=False)
        include_anonymous = serializers.BooleanField(default=False)

    InputSerializer = ContactInputSerializer
    OutputSerializer = ContactOutputSerializer

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        contacts = selectors.contact_list(user=request.user, filters=filters.validated_data)
        return paginated_response(self.OutputSerializer, contacts, request=request, view=self)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contact = services.contact_create(actor=request.user, **data.validated_data)
        return Response(self.OutputSerializer(contact).data, status=status.HTTP_201_CREATED)


_MERGED = OpenApiResponse(
    description="The contact was merged into another: `Location` is the surviving contact's URL."
)


class ContactDetailApi(APIView):
    """A merged contact's URL redirects (308, method kept) to the contact it was merged into."""

    InputSerializer = ContactInputSerializer
    OutputSerializer = ContactOutputSerializer

    @extend_schema(responses={200: OutputSerializer, 308: _MERGED})
    def get(self, request, pk: int):
        contact = selectors.contact_get(user=request.user, contact_id=pk)
        if contact.merged_into_id:
            return _redirect_to_survivor(request, contact)
        return Response(self.OutputSerializer(contact).data)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, 308: _MERGED})
    def patch(self, request, pk: int):
        contact = selectors.contact_get(user=request.user, contact_id=pk)
        if contact.merged_into_id:
            return _redirect_to_survivor(request, contact)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        contact = services.contact_update(contact=contact, actor=request.user, **data.validated_data)
        return Response(self.OutputSerializer(contact).data)

    @extend_schema(responses={204: None, 308: _MERGED})
    def delete(self, request, pk: int):
        contact = selectors.contact_get(user=request.user, contact_id=pk)
        if contact.merged_into_id:
            return _redirect_to_survivor(request, contact)
        services.contact_delete(contact=contact, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _redirect_to_survivor(request, contact: Contact) -> PermanentRedirect:
    survivor = selectors.contact_surviving(contact=contact)
    return merged_contact_redirect(
        request, merged_id=contact.pk, survivor_id=survivor.pk, url_name="api-contact-detail"
    )


# --- companies


@extend_schema_serializer(component_name="Company")
class CompanyOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    domain = serializers.CharField(allow_null=True)
    industry = serializers.CharField()
    size = serializers.CharField()
    owner = serializers.IntegerField(source="owner_id", allow_null=True)
    custom_fields = serializers.DictField()
    contact_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="CompanyInput")
class CompanyInputSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, required=False)
    domain = serializers.CharField(allow_null=True, allow_blank=True, required=False)
    industry = serializers.CharField(allow_blank=True, required=False)
    size = serializers.CharField(allow_blank=True, required=False)
    owner = owner_field()
    custom_fields = serializers.DictField(required=False)


class CompanyListApi(APIView):
    pagination_class = Pagination

    @extend_schema_serializer(component_name="CompanyFilter")
    class FilterSerializer(serializers.Serializer):
        q = serializers.CharField(required=False, allow_blank=True)
        domain = serializers.CharField(required=False, allow_blank=True)
        owner = OwnerFilterField(required=False, help_text='A user id, "me" or "none" (unowned).')

    InputSerializer = CompanyInputSerializer
    OutputSerializer = CompanyOutputSerializer

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        companies = selectors.company_list(user=request.user, filters=filters.validated_data)
        return paginated_response(self.OutputSerializer, companies, request=request, view=self)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        company = services.company_create(actor=request.user, **data.validated_data)
        # Read back through the selector for contact_count, so create and GET answer alike.
        company = selectors.company_get(user=request.user, company_id=company.pk)
        return Response(self.OutputSerializer(company).data, status=status.HTTP_201_CREATED)


class CompanyDetailApi(APIView):
    InputSerializer = CompanyInputSerializer
    OutputSerializer = CompanyOutputSerializer

    @extend_schema(responses=OutputSerializer)
    def get(self, request, pk: int):
        company = selectors.company_get(user=request.user, company_id=pk)
        return Response(self.OutputSerializer(company).data)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def patch(self, request, pk: int):
        company = selectors.company_get(user=request.user, company_id=pk)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.company_update(company=company, actor=request.user, **data.validated_data)
        company = selectors.company_get(user=request.user, company_id=pk)
        return Response(self.OutputSerializer(company).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        company = selectors.company_get(user=request.user, company_id=pk)
        services.company_delete(company=company, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
