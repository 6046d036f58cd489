"""A person's email under "Erase person" and "Export person"."""

import json

import pytest
from django.core.files.storage import default_storage

from mail.models import EmailAttachment, EmailLink, EmailMessage, EmailParticipant, OutgoingEmail
from privacy import selectors as privacy_selectors
from privacy import services as privacy_services
from tests.factories import make_admin, make_contact, make_user
from tests.factories.mail import make_attachment, make_link, make_mailbox, make_message, make_outgoing
from tests.privacy.helpers import rows_mentioning

pytestmark = pytest.mark.django_db

ADA = "ada.erase.z3@acme.test"


@pytest.fixture
def mail(django_capture_on_commit_callbacks):
    rep = make_user(username="rita", email="rita@ourco.test")
    box = make_mailbox(rep)
    ada = make_contact(first_name="Ada", email=ADA)
    bob = make_contact(first_name="Bob", email="bob@acme.test")
    theirs = make_message(
        box, sender=(ADA, "Ada Z"), to=["rita@ourco.test"], subject="From Ada", contacts=[ada]
    )
    make_link(theirs, contact=ada, via=ADA)
    only_file = make_attachment(theirs, filename="ada-only.pdf", content=b"only ada's bytes")
    shared_file = make_attachment(theirs, filename="shared.pdf", content=b"shared bytes")
    to_her = make_message(box, sender="rita@ourco.test", to=[ADA], subject="To Ada alone", contacts=[ada])
    make_link(to_her, contact=ada, via=ADA)
    group = make_message(
        box, sender="rita@ourco.test", to=[ADA, "bob@acme.test"], subject="To both", contacts=[ada, bob]
    )
    make_link(group, contact=ada, via=ADA)
    make_link(group, contact=bob, via="bob@acme.test")
    by_bob = make_message(box, sender="bob@acme.test", to=["rita@ourco.test"], cc=[ADA], subject="Bob cc Ada")
    make_attachment(by_bob, filename="shared-too.pdf", content=b"shared bytes")
    alone = make_outgoing(box, to=[ADA], contact=ada)
    both = make_outgoing(box, to=[ADA.upper(), "bob@acme.test"], cc=[ADA])
    return {
        "ada": ada, "bob": bob, "theirs": theirs, "to_her": to_her, "group": group, "by_bob": by_bob,
        "only_file": only_file.file.name, "shared_file": shared_file.file.name, "alone": alone, "both": both,
    }  # fmt: skip


def test_export_lists_every_message_she_took_part_in(mail):
    admin = make_admin()
    document = json.loads("".join(privacy_selectors.person_export(user=admin, contact=mail["ada"])))
    assert [m["subject"] for m in document["emails"]] == ["From Ada", "To Ada alone", "To both", "Bob cc Ada"]
    assert document["emails"][0]["attachments"][0] == {
        "filename": "ada-only.pdf", "content_type": "application/pdf", "size_bytes": 16,
    }  # fmt: skip
    assert privacy_selectors.person_erase_preview(user=admin, contact=mail["ada"])["emails"] == 4


def test_erasure_takes_her_messages_whole_and_her_part_of_the_others(
    mail, django_capture_on_commit_callbacks
):
    admin = make_admin()
    with django_capture_on_commit_callbacks(execute=True):
        request = privacy_services.person_erase_request(actor=admin, contact=mail["ada"])
        privacy_services.person_erase(request_id=request.pk)
    request.refresh_from_db()

    remaining = set(EmailMessage.objects.values_list("subject", flat=True))

    assert remaining == {"To both", "Bob cc Ada"}  # hers alone went; the others stay for Bob
    assert request.deleted["mail.EmailMessage"] == 2 and request.deleted["mail.OutgoingEmail"] == 1
    assert not EmailParticipant.objects.filter(address=ADA).exists()
    assert list(EmailLink.objects.filter(message=mail["group"]).values_list("contact_id", flat=True)) == [
        mail["bob"].pk
    ]
    assert not OutgoingEmail.objects.filter(pk=mail["alone"].pk).exists()
    both = OutgoingEmail.objects.get(pk=mail["both"].pk)
    assert (both.to, both.cc) == (["bob@acme.test"], [])
    # the file only she had is gone; bytes Bob's message shares stay
    assert not default_storage.exists(mail["only_file"])
    assert default_storage.exists(mail["shared_file"])
    assert EmailAttachment.objects.filter(file=mail["shared_file"]).count() == 1
    leftovers = {k: v for k, v in rows_mentioning([ADA]).items() if k.startswith("mail_")}
    assert leftovers == {}
