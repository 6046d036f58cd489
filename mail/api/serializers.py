"""Shapes of the mail API: a record's email list, one message, a send and a template on the wire.
Shape only: who may see or do what is the selectors' and services' job."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from mail.models import Direction
from mail.services.sending import MAX_RECIPIENTS

DIRECTION_HELP = "outgoing when a workspace mailbox sent it, else incoming."
REASON_HELP = (
    "Why the message is on the record: address, thread, reply, dropbox, manual, sent, company or deal."
)


@extend_schema_serializer(component_name="EmailSender")
class SenderSerializer(serializers.Serializer):
    address = serializers.CharField(source="from_address")
    name = serializers.CharField(source="from_name")


@extend_schema_serializer(component_name="EmailRecipient")
class RecipientSerializer(serializers.Serializer):
    address = serializers.CharField()
    name = serializers.CharField()
    contact = serializers.IntegerField(source="contact_id", allow_null=True, help_text="The matched contact.")


def _direction(sent: bool) -> str:
    return Direction.OUTGOING if sent else Direction.INCOMING


class DirectionField(serializers.ChoiceField):
    """A message's direction from its `sent` flag (a workspace mailbox holds an outgoing copy)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(choices=Direction.choices, source="sent", help_text=DIRECTION_HELP, **kwargs)

    def to_representation(self, value) -> str:
        return _direction(bool(value))


# --- a record's email list (mail.selectors.messages.RecordMessage)


class _EmailHeadSerializer(serializers.Serializer):
    """What a list row and the detail both say of a message (their objects carry `.message`)."""

    id = serializers.IntegerField(source="message.pk")
    thread_id = serializers.IntegerField(source="message.thread_id")
    subject = serializers.CharField(source="message.subject")
    # "from" is a keyword: declared through the class namespace, as DRF reads it.
    locals()["from"] = SenderSerializer(source="message")
    to = RecipientSerializer(many=True)
    cc = RecipientSerializer(many=True)
    sent_at = serializers.DateTimeField(source="message.sent_at")
    direction = DirectionField()
    snippet = serializers.CharField(source="message.snippet")


@extend_schema_serializer(component_name="RecordEmail")
class RecordEmailSerializer(_EmailHeadSerializer):
    reason = serializers.CharField(help_text=REASON_HELP)
    reason_label = serializers.CharField()
    via = serializers.CharField(help_text="The address or Message-ID that made the link.")
    attachment_count = serializers.IntegerField(help_text="Listed attachments (inline images not counted).")


@extend_schema_serializer(component_name="RecordEmailPage")
class RecordEmailPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="The next (older) page; null on the last.")
    results = RecordEmailSerializer(many=True)


# --- one message


@extend_schema_serializer(component_name="EmailAttachment")
class AttachmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    filename = serializers.CharField()
    content_type = serializers.CharField()
    size_bytes = serializers.IntegerField()
    download_url = serializers.SerializerMethodField(
        help_text="Null when the file was not kept (`skipped_reason` says why)."
    )
    skipped_reason = serializers.CharField()

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, attachment) -> str | None:
        if attachment.skipped_reason or not attachment.file:
            return None
        path = reverse("mail:attachment", args=[attachment.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


@extend_schema_serializer(component_name="EmailRecordLink")
class LinkSerializer(serializers.Serializer):
    contact = serializers.IntegerField(source="contact_id", allow_null=True)
    company = serializers.IntegerField(source="company_id", allow_null=True)
    deal = serializers.IntegerField(source="deal_id", allow_null=True)
    reason = serializers.CharField(help_text=REASON_HELP)
    reason_label = serializers.CharField(source="get_reason_display")
    via = serializers.CharField()


@extend_schema_serializer(component_name="EmailDetail")
class EmailDetailSerializer(_EmailHeadSerializer):
    """A message with its bodies: the text as received, the HTML sanitised again with no image
    loaded (a remote image tells the sender it was read)."""

    header_message_id = serializers.CharField(source="message.header_message_id")
    in_reply_to = serializers.CharField(source="message.in_reply_to")
    text_body = serializers.CharField(source="message.text_body")
    html_body = serializers.CharField(help_text="Sanitised HTML (no script, style, form or image).")
    attachments = AttachmentSerializer(many=True)
    links = LinkSerializer(many=True, help_text="The records the message is on.")


# --- sending


def _addresses_field(**kwargs) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=998),
        max_length=MAX_RECIPIENTS,
        required=False,
        help_text='"a@b.test" or "Name <a@b.test>", one address each.',
        **kwargs,
    )


def _id_field(help_text: str) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, required=False, allow_null=True, help_text=help_text)


@extend_schema_serializer(component_name="EmailSendInput")
class SendInputSerializer(serializers.Serializer):
    """Shape only; the send service checks the addresses, the subject, the body and the cap."""

    mailbox = _id_field("One of your own mailboxes; left out, your first one that can send.")
    to = _addresses_field()
    cc = _addresses_field()
    bcc = _addresses_field()
    subject = serializers.CharField(
        max_length=998,
        required=False,
        allow_blank=True,
        help_text="Left out with a template: the template's.",
    )
    body_text = serializers.CharField(required=False, allow_blank=True)
    body_html = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Stored sanitised. Left out (with body_text) with a template: the template's body.",
    )
    contact = _id_field("The contact the email is about (its timeline, and the template's merge fields).")
    deal = _id_field("The deal the email is about.")
    template = _id_field(
        "A template you may use: its subject and body are filled for the contact, deal and you; a "
        "merge field with no value is a 400 listing them (`missing`)."
    )
    reply_to = _id_field("A message you may open: the send threads under it (In-Reply-To, References).")
    track = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Track opens and clicks; null: the mailbox's default.",
    )
    send_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Later; left out: now.")


@extend_schema_serializer(component_name="OutgoingEmail")
class OutgoingEmailSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="scheduled, sending, sent, failed or canceled.")
    send_at = serializers.DateTimeField()
    message_id = serializers.CharField(source="header_message_id", help_text="The Message-ID header.")
    mailbox = serializers.IntegerField(source="mailbox_id")
    to = serializers.ListField(child=serializers.CharField())
    cc = serializers.ListField(child=serializers.CharField())
    bcc = serializers.ListField(child=serializers.CharField())
    subject = serializers.CharField()
    body_text = serializers.CharField()
    body_html = serializers.CharField()
    contact = serializers.IntegerField(source="contact_id", allow_null=True)
    deal = serializers.IntegerField(source="deal_id", allow_null=True)
    template = serializers.IntegerField(source="template_id", allow_null=True)
    reply_to = serializers.IntegerField(source="reply_to_message_id", allow_null=True)
    track = serializers.BooleanField()


# --- templates


@extend_schema_serializer(component_name="EmailTemplate")
class TemplateOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    subject = serializers.CharField()
    body = serializers.CharField(help_text="HTML with merge fields ({{ contact.first_name }}).")
    shared = serializers.BooleanField()
    owner = serializers.IntegerField(source="owner_id")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="EmailTemplateInput")
class TemplateInputSerializer(serializers.Serializer):
    """Shape only: the service requires a name, subject and body and refuses unknown merge fields."""

    # Not required here: the service's messages ("Give the template a name.") say it better.
    name = serializers.CharField(allow_blank=True, max_length=200, required=False, default="")
    subject = serializers.CharField(allow_blank=True, max_length=998, required=False, default="")
    body = serializers.CharField(allow_blank=True, required=False, default="")
    shared = serializers.BooleanField(required=False, default=False, help_text="Offered to every rep.")


@extend_schema_serializer(component_name="EmailTemplatePatch")
class TemplatePatchSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, max_length=200, required=False)
    subject = serializers.CharField(allow_blank=True, max_length=998, required=False)
    body = serializers.CharField(allow_blank=True, required=False)
    shared = serializers.BooleanField(required=False)
