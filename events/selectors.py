from events.models import Source


def source_counts() -> dict[str, int]:
    return {"sources": Source.objects.count(), "enabled": Source.objects.filter(enabled=True).count()}
