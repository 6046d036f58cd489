from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.roles import user_roles


class MeApi(APIView):
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        email = serializers.EmailField(allow_blank=True)
        name = serializers.CharField()
        roles = serializers.ListField(child=serializers.CharField())
        auth = serializers.ChoiceField(choices=["token", "session"])

    serializer_class = OutputSerializer

    def get(self, request):
        user = request.user
        data = {
            "id": user.pk,
            "username": user.get_username(),
            "email": user.email,
            "name": user.get_full_name(),
            "roles": sorted(user_roles(user)),
            "auth": "token" if request.auth is not None else "session",
        }
        return Response(self.OutputSerializer(data).data)
