"""What a new installation starts with, so a rep can add and lose a deal before anyone configures
anything (HubSpot and Pipedrive give every new account a "Sales pipeline" too).

`install_defaults` takes an app registry: the data migration passes its historical one, tests and
tools the live `django.apps.apps`. It only adds what is missing, so running it again is harmless,
and it never touches a pipeline an Admin has already set up.
"""

from django.db import transaction

DEFAULT_PIPELINE = "Sales pipeline"
# (name, win probability %), Pipedrive's default stages. Won and lost are a deal's status, not
# stages: a closed deal keeps the stage it was closed from.
DEFAULT_STAGES = (
    ("Qualified", 10),
    ("Contact made", 20),
    ("Demo scheduled", 40),
    ("Proposal made", 60),
    ("Negotiation", 80),
)
# The default reason that asks for a note (LostReason.note_required).
OTHER_REASON = "Other"
DEFAULT_LOST_REASONS = ("Price", "Competitor", "No budget", "No decision", "Timing", OTHER_REASON)


@transaction.atomic
def install_defaults(apps) -> dict[str, int]:
    """The default pipeline when there is no pipeline at all, and each default lost reason whose
    name (in any case) is not taken. Returns how many pipelines, stages and reasons it created."""
    Pipeline = apps.get_model("pipeline", "Pipeline")
    Stage = apps.get_model("pipeline", "Stage")
    LostReason = apps.get_model("pipeline", "LostReason")
    created = {"pipelines": 0, "stages": 0, "lost_reasons": 0}
    if not Pipeline.objects.exists():
        pipeline = Pipeline.objects.create(name=DEFAULT_PIPELINE, position=0)
        Stage.objects.bulk_create(
            Stage(pipeline=pipeline, name=name, probability=probability, position=index)
            for index, (name, probability) in enumerate(DEFAULT_STAGES)
        )
        created["pipelines"], created["stages"] = 1, len(DEFAULT_STAGES)
    taken = {name.casefold() for name in LostReason.objects.values_list("name", flat=True)}
    position = max(LostReason.objects.values_list("position", flat=True), default=-1) + 1
    missing = [name for name in DEFAULT_LOST_REASONS if name.casefold() not in taken]
    # Migration 0003 runs this before 0006 adds the flag; 0006 then sets it on "Other".
    flagged = any(f.name == "note_required" for f in LostReason._meta.get_fields())
    LostReason.objects.bulk_create(
        LostReason(
            name=name,
            position=position + index,
            **({"note_required": name == OTHER_REASON} if flagged else {}),
        )
        for index, name in enumerate(missing)
    )
    created["lost_reasons"] = len(missing)
    return created
