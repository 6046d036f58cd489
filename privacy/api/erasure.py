"""REST API: POST /api/v1/contacts/{id}/erase/, GET /api/v1/privacy/erasures/{id}/,
GET /api/v1/contacts/{id}/export/."""

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts import selectors as contact_selectors
from privacy import selectors, services
from privacy.models import ErasureStatus


@extend_schema_serializer(component_name="ErasureRequest")
class ErasureOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    status = serializers.ChoiceField(choices=ErasureStatus.choices)
    requested_by = serializers.IntegerField(source="requested_by_id", allow_null=True)
    requested_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    deleted = serializers.DictField(child=serializers.IntegerField())
    failure = serializers.CharField()
    url = serializers.SerializerMethodField()

    def get_url(self, obj) -> str:
        return self.context["request"].build_absolute_uri(f"/api/v1/privacy/erasures/{obj.pk}/")


class ContactEraseApi(APIView):
    @extend_schema(
        request=None,
        responses={
            202: ErasureOutputSerializer,
            403: OpenApiResponse(description="Only Admins erase people."),
            404: OpenApiResponse(description="No such contact."),
        },
    )
    def post(self, request, pk: int):
        contact = contact_selectors.contact_get(user=request.user, contact_id=pk)
        erasure = services.person_erase_request(actor=request.user, contact=contact)
        data = ErasureOutputSerializer(erasure, context={"request": request}).data
        return Response(data, status=202, headers={"Location": data["url"]})


class ErasureDetailApi(APIView):
    @extend_schema(responses=ErasureOutputSerializer)
    def get(self, request, pk: int):
        erasure = selectors.erasure_get(user=request.user, request_id=pk)
        return Response(ErasureOutputSerializer(erasure, context={"request": request}).data)


class ContactExportApi(APIView):
    @extend_schema(
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            403: OpenApiResponse(description="Admin, or Sales for contacts they may edit."),
        }
    )
    def get(self, request, pk: int):
        contact = contact_selectors.contact_get(user=request.user, contact_id=pk)
        return export_response(selectors.person_export(user=request.user, contact=contact), contact_id=pk)


def export_response(chunks, *, contact_id: int) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="contact-{contact_id}-export.json"'
    response["Cache-Control"] = "no-store"
    return response
