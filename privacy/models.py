import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from contacts.models import Contact


def new_reference() -> str:
    return "er_" + secrets.token_hex(8)


class ErasureStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ErasureRequest(models.Model):
    """The audit record of one "Erase person": who asked, when, what was deleted (counts per table).
    It holds NO personal data once done: the contact link goes with the contact (SET_NULL, and the
    task clears it), and a failure keeps only the exception's class name."""

    reference = models.CharField(max_length=40, unique=True, default=new_reference)
    status = models.CharField(max_length=10, choices=ErasureStatus.choices, default=ErasureStatus.QUEUED)
    # Only while pending: the task needs to know whom to erase.
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Table label -> rows deleted; summed over runs when a task resumes.
    deleted = models.JSONField(default=dict, blank=True)
    failure = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="done") | Q(contact__isnull=True), name="erasure_done_keeps_no_contact"
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    def get_absolute_url(self) -> str:
        return reverse("privacy:erasure_detail", args=[self.pk])

    @property
    def deleted_total(self) -> int:
        return sum(self.deleted.values())
