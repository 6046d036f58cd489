"""CRM records: contacts and companies."""

import itertools

from contacts import services as contact_services
from contacts.models import Company, Contact

_seq = itertools.count(1)


def make_company(*, name: str | None = None, **fields) -> Company:
    """A company created by the system (no actor), so it has no owner unless one is given."""
    return contact_services.company_create(actor=None, name=name or f"Company {next(_seq)}", **fields)


def make_contact(*, is_identified: bool = True, merged_into: Contact | None = None, **fields) -> Contact:
    """A contact created by the system (no actor), so it has no owner unless one is given.

    `is_identified` and `merged_into` belong to the identity worker, not to the CRM services, so
    they are set on the row directly.
    """
    if not any(fields.get(name) for name in contact_services.IDENTIFYING_FIELDS):
        fields["first_name"] = f"Contact {next(_seq)}"  # contact_create needs a name, email or phone
    contact = contact_services.contact_create(actor=None, **fields)
    if not is_identified or merged_into is not None:
        Contact.objects.filter(pk=contact.pk).update(is_identified=is_identified, merged_into=merged_into)
        contact.refresh_from_db()
    return contact
