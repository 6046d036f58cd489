"""REST API for activities and tasks: parse input, call one service or selector, render."""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts.models import Company, Contact
from core.api import Pagination, paginated_response
from core.params import parse_id
from pipeline import permissions
from pipeline.models import (
    ACTIVITY_BODY_MAX_LENGTH,
    MAX_CALL_MINUTES,
    ActivityKind,
    CallOutcome,
    Deal,
    TaskKind,
    TaskPriority,
)
from pipeline.selectors import activities as activity_selectors
from pipeline.services import activities


def _record_field(model) -> serializers.PrimaryKeyRelatedField:
    return serializers.PrimaryKeyRelatedField(queryset=model.objects.all(), allow_null=True, required=False)


# --- activities


@extend_schema_serializer(component_name="Activity")
class ActivityOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ActivityKind.choices)
    subject = serializers.CharField()
    body = serializers.CharField()
    contact = serializers.IntegerField(source="contact_id", allow_null=True)
    deal = serializers.IntegerField(source="deal_id", allow_null=True)
    company = serializers.IntegerField(source="company_id", allow_null=True)
    author = serializers.IntegerField(source="author_id", allow_null=True)
    occurred_at = serializers.DateTimeField()
    call_outcome = serializers.ChoiceField(
        choices=CallOutcome.choices, allow_blank=True, help_text="Calls only; blank otherwise."
    )
    duration_minutes = serializers.IntegerField(allow_null=True, help_text="Calls only: minutes.")
    created_at = serializers.DateTimeField()


def _call_outcome_field() -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=CallOutcome.choices, allow_blank=True, required=False, help_text="Calls only."
    )


def _duration_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=0,
        max_value=MAX_CALL_MINUTES,
        allow_null=True,
        required=False,
        help_text="Calls only: minutes.",
    )


@extend_schema_serializer(component_name="ActivityInput")
class ActivityInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ActivityKind.choices)
    subject = serializers.CharField(allow_blank=True, required=False, max_length=200)
    body = serializers.CharField(allow_blank=True, required=False, max_length=ACTIVITY_BODY_MAX_LENGTH)
    occurred_at = serializers.DateTimeField(required=False, allow_null=True)
    call_outcome = _call_outcome_field()
    duration_minutes = _duration_field()
    contact = _record_field(Contact)
    deal = _record_field(Deal)
    company = _record_field(Company)


@extend_schema_serializer(component_name="ActivityPatch")
class ActivityPatchSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ActivityKind.choices, required=False)
    subject = serializers.CharField(allow_blank=True, required=False, max_length=200)
    body = serializers.CharField(allow_blank=True, required=False, max_length=ACTIVITY_BODY_MAX_LENGTH)
    occurred_at = serializers.DateTimeField(required=False)
    call_outcome = _call_outcome_field()
    duration_minutes = _duration_field()


class ActivityListApi(APIView):
    pagination_class = Pagination

    @extend_schema_serializer(component_name="ActivityFilter")
    class FilterSerializer(serializers.Serializer):
        contact = serializers.IntegerField(required=False)
        deal = serializers.IntegerField(required=False)
        company = serializers.IntegerField(required=False)
        author = serializers.IntegerField(required=False)
        kind = serializers.ChoiceField(choices=ActivityKind.choices, required=False)

    InputSerializer = ActivityInputSerializer
    OutputSerializer = ActivityOutputSerializer

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = activity_selectors.activity_list(user=request.user, filters=filters.validated_data)
        return paginated_response(self.OutputSerializer, rows, request=request, view=self)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        permissions.ensure_can_write(request.user, what="activities")  # before validating the body
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        activity = activities.activity_log(actor=request.user, **data.validated_data)
        return Response(self.OutputSerializer(activity).data, status=status.HTTP_201_CREATED)


class ActivityDetailApi(APIView):
    InputSerializer = ActivityPatchSerializer
    OutputSerializer = ActivityOutputSerializer

    @extend_schema(responses=OutputSerializer)
    def get(self, request, pk: int):
        activity = activity_selectors.activity_get(user=request.user, activity_id=pk)
        return Response(self.OutputSerializer(activity).data)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def patch(self, request, pk: int):
        activity = activity_selectors.activity_get(user=request.user, activity_id=pk)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        activity = activities.activity_update(activity=activity, actor=request.user, **data.validated_data)
        return Response(self.OutputSerializer(activity).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        activity = activity_selectors.activity_get(user=request.user, activity_id=pk)
        activities.activity_delete(activity=activity, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- tasks


@extend_schema_serializer(component_name="Task")
class TaskOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=TaskKind.choices)
    priority = serializers.ChoiceField(choices=TaskPriority.choices)
    notes = serializers.CharField()
    due_at = serializers.DateTimeField(allow_null=True)
    assignee = serializers.IntegerField(source="assignee_id")
    done = serializers.BooleanField()
    done_at = serializers.DateTimeField(allow_null=True)
    contact = serializers.IntegerField(source="contact_id", allow_null=True)
    deal = serializers.IntegerField(source="deal_id", allow_null=True)
    company = serializers.IntegerField(source="company_id", allow_null=True)
    created_by = serializers.IntegerField(source="created_by_id", allow_null=True)
    reminder_sent_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


def _assignee_field(**kwargs):
    return serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.filter(is_active=True), **kwargs
    )


@extend_schema_serializer(component_name="TaskInput")
class TaskInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=TaskKind.choices, required=False, help_text="Defaults to todo.")
    priority = serializers.ChoiceField(
        choices=TaskPriority.choices, required=False, help_text="Defaults to normal."
    )
    notes = serializers.CharField(allow_blank=True, required=False)
    due_at = serializers.DateTimeField(required=False, allow_null=True)
    assignee = _assignee_field(required=False, allow_null=True, help_text="Defaults to the caller.")
    contact = _record_field(Contact)
    deal = _record_field(Deal)
    company = _record_field(Company)


@extend_schema_serializer(component_name="TaskPatch")
class TaskPatchSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    kind = serializers.ChoiceField(choices=TaskKind.choices, required=False)
    priority = serializers.ChoiceField(choices=TaskPriority.choices, required=False)
    notes = serializers.CharField(allow_blank=True, required=False)
    due_at = serializers.DateTimeField(required=False, allow_null=True)
    assignee = _assignee_field(required=False)
    done = serializers.BooleanField(required=False)


class AssigneeFilterField(serializers.CharField):
    """A user id or "me" (the caller)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data).strip().lower()
        if value == "me":
            return value
        if (user_id := parse_id(value)) is not None:
            return user_id
        raise serializers.ValidationError('Expected a user id or "me".')


class TaskListApi(APIView):
    pagination_class = Pagination

    @extend_schema_serializer(component_name="TaskFilter")
    class FilterSerializer(serializers.Serializer):
        assignee = AssigneeFilterField(required=False, help_text='A user id or "me".')
        done = serializers.BooleanField(required=False, allow_null=True, default=None)
        due = serializers.ChoiceField(choices=["overdue", "today", "upcoming", "none"], required=False)
        contact = serializers.IntegerField(required=False)
        deal = serializers.IntegerField(required=False)
        company = serializers.IntegerField(required=False)

    InputSerializer = TaskInputSerializer
    OutputSerializer = TaskOutputSerializer

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = activity_selectors.task_list(user=request.user, filters=filters.validated_data)
        return paginated_response(self.OutputSerializer, rows, request=request, view=self)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        permissions.ensure_can_write(request.user, what="tasks")  # before validating the body
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        task = activities.task_create(actor=request.user, **data.validated_data)
        return Response(self.OutputSerializer(task).data, status=status.HTTP_201_CREATED)


class TaskDetailApi(APIView):
    InputSerializer = TaskPatchSerializer
    OutputSerializer = TaskOutputSerializer

    @extend_schema(responses=OutputSerializer)
    def get(self, request, pk: int):
        task = activity_selectors.task_get(user=request.user, task_id=pk)
        return Response(self.OutputSerializer(task).data)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def patch(self, request, pk: int):
        task = activity_selectors.task_get(user=request.user, task_id=pk)
        permissions.ensure_can_change_task(request.user, task)  # before validating the body
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        task = activities.task_update(task=task, actor=request.user, **data.validated_data)
        return Response(self.OutputSerializer(task).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        task = activity_selectors.task_get(user=request.user, task_id=pk)
        activities.task_delete(task=task, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
