from django.db.models import Count, Q

from contacts.models import Company, Contact


def contact_counts() -> dict[str, int]:
    """Live (not merged) contacts: identified people, anonymous visitors; and companies."""
    counts = Contact.objects.filter(merged_into__isnull=True).aggregate(
        identified=Count("pk", filter=Q(is_identified=True)),
        anonymous=Count("pk", filter=Q(is_identified=False)),
    )
    counts["companies"] = Company.objects.count()
    return counts
