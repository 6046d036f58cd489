"""REST API of rep email: a record's messages, one message, sending, and templates. Parse input,
call the selectors and services of mail (and of the records they are about), render.

Who sees what is mail.selectors.messages': a message on a record is every CRM reader's, private
mail (linked to nothing) only its mailbox owner's, and anything else is a 404, never a 403, so
private mail does not reveal that it exists. Sending goes through the caller's own mailbox only
(mail.services.sending); templates follow mail.services.templates (personal ones are their
owner's; a shared one is edited by its owner or an Admin).
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, prefetch_related_objects
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from contacts import selectors as contact_selectors
from contacts.permissions import can_read
from core.api import Pagination, PermanentRedirect, merged_contact_redirect, paginated_response
from core.errors import DomainError, Forbidden, NotFound
from core.pagination import decode_cursor, encode_cursor
from mail.api.serializers import (
    EmailDetailSerializer,
    OutgoingEmailSerializer,
    RecordEmailPageSerializer,
    SendInputSerializer,
    TemplateInputSerializer,
    TemplateOutputSerializer,
    TemplatePatchSerializer,
)
from mail.html import html_sanitise
from mail.models import (
    Direction,
    EmailAttachment,
    EmailLink,
    EmailMessage,
    EmailParticipant,
    Mailbox,
    MailboxKind,
    ParticipantRole,
    SyncState,
)
from mail.selectors import messages as message_selectors
from mail.selectors import templates as template_selectors
from mail.services import sending
from mail.services import templates as template_services
from pipeline import selectors as pipeline_selectors

PAGE_SIZE = 50
# Each row carries its participants: bounded like the rest of the API's lists.
MAX_PAGE_SIZE = 200

_MERGED = OpenApiResponse(
    description="The contact was merged into another: `Location` is the same resource of the survivor."
)


# --- a record's messages


@extend_schema_serializer(component_name="RecordEmailFilter")
class RecordEmailFilterSerializer(serializers.Serializer):
    cursor = serializers.CharField(required=False, help_text="From `next` of the previous page.")
    limit = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, default=PAGE_SIZE, required=False)

    def validate_cursor(self, value: str) -> tuple[datetime, int]:
        decoded = decode_cursor(value)
        if decoded is None or not isinstance(decoded[0], datetime) or decoded[2] != "next":
            raise serializers.ValidationError("Not a cursor of this list: start again without one.")
        return decoded[0], decoded[1]


def _record_page(request, **record) -> Response:
    """One page of a record's messages, newest first, keyset-paged on (sent_at, id).

    record_messages pages by instant (`until`, inclusive) as the timelines do; the rows at the
    cursor's own instant that the previous page showed (id >= the cursor's) are dropped here, and
    when a whole page of messages shares that instant the read goes on past them."""
    params = RecordEmailFilterSerializer(data=request.query_params)
    params.is_valid(raise_exception=True)
    size = params.validated_data["limit"]
    until, after_id = params.validated_data.get("cursor") or (None, None)
    limit = size + 2  # the page, one to know there is a next, and the cursor's own row
    while True:
        rows = message_selectors.record_messages(user=request.user, until=until, limit=limit, **record)
        kept = [r for r in rows if until is None or r.at < until or r.key < after_id]
        if len(kept) > size or len(rows) < limit:
            break
        limit += size
    page = kept[:size]
    next_url = None
    if len(kept) > size:
        cursor = encode_cursor(page[-1].at, page[-1].key, "next")
        next_url = replace_query_param(request.build_absolute_uri(), "cursor", cursor)
    body = RecordEmailPageSerializer({"next": next_url, "results": page}, context={"request": request})
    return Response(body.data)


def _merged_redirect(request, contact) -> PermanentRedirect | None:
    """A merged contact's list is its survivor's (the contact API's rule for its old URLs)."""
    if contact.merged_into_id is None:
        return None
    survivor = contact_selectors.contact_surviving(contact=contact)
    return merged_contact_redirect(
        request, merged_id=contact.pk, survivor_id=survivor.pk, url_name="api-contact-emails"
    )


class ContactEmailListApi(APIView):
    """The contact's email, newest first (cursor pages: follow `next`), each with why it is on
    the contact."""

    @extend_schema(
        parameters=[RecordEmailFilterSerializer], responses={200: RecordEmailPageSerializer, 308: _MERGED}
    )
    def get(self, request, pk: int):
        contact = contact_selectors.contact_get(user=request.user, contact_id=pk)
        if moved := _merged_redirect(request, contact):
            return moved
        return _record_page(request, contact=contact)


class CompanyEmailListApi(APIView):
    """The company's email (its people's, linked "company"), newest first, in cursor pages."""

    @extend_schema(parameters=[RecordEmailFilterSerializer], responses=RecordEmailPageSerializer)
    def get(self, request, pk: int):
        company = contact_selectors.company_get(user=request.user, company_id=pk)
        return _record_page(request, company=company)


class DealEmailListApi(APIView):
    """The deal's email, newest first, in cursor pages."""

    @extend_schema(parameters=[RecordEmailFilterSerializer], responses=RecordEmailPageSerializer)
    def get(self, request, pk: int):
        deal = pipeline_selectors.deal_get(user=request.user, deal_id=pk)
        return _record_page(request, deal=deal)


# --- one message


@dataclass
class _ShownMessage:
    message: EmailMessage
    sent: bool
    to: list[EmailParticipant]
    cc: list[EmailParticipant]
    html_body: str
    attachments: list[EmailAttachment]
    links: list[EmailLink]


def _message_shown(*, user, pk: int) -> _ShownMessage:
    message = message_selectors.message_get(user=user, pk=pk)
    prefetch_related_objects(
        [message],
        Prefetch("participants", queryset=EmailParticipant.objects.order_by("role", "pk")),
        # inline cid: parts are part of the body, not downloads (as the thread view lists them)
        Prefetch(
            "attachments",
            queryset=EmailAttachment.objects.filter(content_id="").order_by("pk"),
            to_attr="listed_attachments",
        ),
        Prefetch("links", queryset=EmailLink.objects.order_by("pk")),
    )
    participants = list(message.participants.all())
    # Bcc is not shown: the recipients did not see it either.
    return _ShownMessage(
        message=message,
        sent=message.copies.filter(direction=Direction.OUTGOING).exists(),
        to=[p for p in participants if p.role == ParticipantRole.TO],
        cc=[p for p in participants if p.role == ParticipantRole.CC],
        # Sanitised when stored and again here, as the thread view does, with no image loaded.
        html_body=html_sanitise(message.html_body, images=False),
        attachments=message.listed_attachments,
        # A mailbox owner with no CRM role sees their own copy, not which records it is on.
        links=list(message.links.all()) if can_read(user) else [],
    )


class EmailDetailApi(APIView):
    @extend_schema(responses=EmailDetailSerializer)
    def get(self, request, pk: int):
        """One message with its bodies, recipients, attachments and records; 404 when you may not
        open it (another user's private mail included)."""
        shown = _message_shown(user=request.user, pk=pk)
        return Response(EmailDetailSerializer(shown, context={"request": request}).data)


# --- sending


def _own_mailboxes(user) -> list[Mailbox]:
    """The caller's personal mailboxes, the default sender first: one that can send (has an SMTP
    server), not paused, the first connected."""
    mailboxes = Mailbox.objects.filter(owner_id=user.pk, kind=MailboxKind.PERSONAL).order_by("pk")
    return sorted(mailboxes, key=lambda m: (not m.smtp_host, m.sync_state == SyncState.PAUSED))


def _field_lookup(name: str, lookup):
    """A record named by an input field; one that does not exist (or is not yours to see) is bad
    input naming the field."""
    try:
        return lookup()
    except NotFound as exc:
        raise serializers.ValidationError({name: [exc.message]}) from None


class EmailSendApi(APIView):
    @extend_schema(request=SendInputSerializer, responses={201: OutgoingEmailSerializer})
    def post(self, request):
        """Send an email through one of your mailboxes, now or at `send_at` (delivered in the
        background: `status` is scheduled until it goes). 403 when you have connected no mailbox;
        400 naming the field for bad addresses, a mailbox that is not yours, a template's merge
        fields with no value (`missing`), or the mailbox's 24-hour limit (`send_cap_reached`)."""
        user = request.user
        mailboxes = _own_mailboxes(user)
        if not mailboxes:  # before validating: nothing to learn from the body's errors
            raise Forbidden("Connect a mailbox in Settings → Email to send from the CRM.", code="no_mailbox")
        data = SendInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        mailbox = mailboxes[0]
        if (mailbox_id := values.get("mailbox")) is not None:
            mailbox = next((m for m in mailboxes if m.pk == mailbox_id), None)
            if mailbox is None:
                raise serializers.ValidationError({"mailbox": ["Not one of your mailboxes."]})
        contact = deal = template = reply_to = None
        if (contact_id := values.get("contact")) is not None:
            contact = _field_lookup(
                "contact",
                lambda: contact_selectors.contact_surviving(
                    contact=contact_selectors.contact_get(user=user, contact_id=contact_id)
                ),
            )
        if (deal_id := values.get("deal")) is not None:
            deal = _field_lookup("deal", lambda: pipeline_selectors.deal_get(user=user, deal_id=deal_id))
        if (template_id := values.get("template")) is not None:
            template = _field_lookup(
                "template", lambda: template_selectors.template_get(user=user, pk=template_id)
            )
        if (reply_id := values.get("reply_to")) is not None:
            reply_to = _field_lookup(
                "reply_to", lambda: message_selectors.message_get(user=user, pk=reply_id)
            )
        subject = values.get("subject", "")
        body_text, body_html = values.get("body_text", ""), values.get("body_html", "")
        if template is not None and not (subject.strip() and (body_text.strip() or body_html.strip())):
            rendered = _template_filled(template, contact=contact, deal=deal, sender=user)
            subject = subject if subject.strip() else rendered.subject
            if not (body_text.strip() or body_html.strip()):
                body_text, body_html = rendered.body_text, rendered.body_html
        send = sending.email_send(
            sender=user,
            mailbox=mailbox,
            to=values.get("to", []),
            cc=values.get("cc", []),
            bcc=values.get("bcc", []),
            subject=subject,
            body_text=body_text,
            body_html=body_html,
            contact=contact,
            deal=deal,
            template=template,
            reply_to_message=reply_to,
            track=values.get("track"),
            send_at=values.get("send_at"),
        )
        return Response(OutgoingEmailSerializer(send).data, status=status.HTTP_201_CREATED)


def _template_filled(template, *, contact, deal, sender) -> template_services.RenderedEmail:
    context = template_services.MergeContext(contact=contact, deal=deal, sender=sender)
    try:
        return template_services.template_render(template=template, context=context)
    except template_services.MergeFieldMissing as exc:
        # The same answer, with the field the client sent that needs the values.
        raise DomainError(
            exc.message, code=exc.code, fields={"template": exc.message}, data={"missing": exc.missing}
        ) from None


# --- templates


class EmailTemplateListApi(APIView):
    pagination_class = Pagination

    @extend_schema(responses=TemplateOutputSerializer(many=True))
    def get(self, request):
        """Your templates and the shared ones, by name."""
        rows = template_selectors.templates_available(user=request.user)
        return paginated_response(TemplateOutputSerializer, rows, request=request, view=self)

    @extend_schema(request=TemplateInputSerializer, responses={201: TemplateOutputSerializer})
    def post(self, request):
        """A template of yours (personal, or shared with every rep). Unknown merge fields are a 400."""
        data = TemplateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        template = template_services.template_create(actor=request.user, **data.validated_data)
        return Response(TemplateOutputSerializer(template).data, status=status.HTTP_201_CREATED)


class EmailTemplateDetailApi(APIView):
    @extend_schema(responses=TemplateOutputSerializer)
    def get(self, request, pk: int):
        """A template you may use; another user's personal template is a 404."""
        template = template_selectors.template_get(user=request.user, pk=pk)
        return Response(TemplateOutputSerializer(template).data)

    @extend_schema(request=TemplatePatchSerializer, responses=TemplateOutputSerializer)
    def patch(self, request, pk: int):
        """Its owner, or an Admin for a shared template (403 otherwise)."""
        template = template_selectors.template_get(user=request.user, pk=pk)
        data = TemplatePatchSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        # The service checks who may edit before the values, so a refused PATCH learns nothing.
        values = {"name": template.name, "subject": template.subject, "body": template.body}
        template = template_services.template_update(
            template=template, actor=request.user, **(values | data.validated_data)
        )
        return Response(TemplateOutputSerializer(template).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        """Its owner, or an Admin for a shared template (403 otherwise)."""
        template = template_selectors.template_get(user=request.user, pk=pk)
        template_services.template_delete(template=template, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
