from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView


class ApiRootApi(APIView):
    @extend_schema(
        responses=inline_serializer(
            "ApiRoot",
            {
                "version": serializers.CharField(),
                "resources": serializers.DictField(child=serializers.URLField()),
            },
        )
    )
    def get(self, request):
        resources = {
            "me": "api-me",
            "contacts": "api-contacts",
            "companies": "api-companies",
            "pipelines": "api-pipelines",
            "deals": "api-deals",
            "sources": "api-sources",
            "activities": "api-activities",
            "tasks": "api-tasks",
            "identity_merges": "api-identity-merges",
            "segments": "api-segments",
            "score_models": "api-score-models",
            "prediction_models": "api-prediction-models",
            "email_send": "api-email-send",
            "email_templates": "api-email-templates",
            "schema": "api-schema",
            "docs": "api-docs",
        }
        return Response(
            {
                "version": "1",
                "resources": {
                    key: request.build_absolute_uri(reverse(name)) for key, name in resources.items()
                },
            }
        )
