"""Pipelines, stages, deals and lost reasons."""

from pipeline.models import Deal, LostReason, Pipeline, Stage


def make_pipeline(
    name: str = "Sales", stages=(("Lead in", 10, None), ("Demo", 40, 7), ("Proposal", 80, None))
):
    pipeline = Pipeline.objects.create(name=name)
    for index, (stage_name, probability, rot) in enumerate(stages):
        Stage.objects.create(
            pipeline=pipeline, name=stage_name, probability=probability, rotting_days=rot, position=index
        )
    return pipeline


def stages_of(pipeline) -> list[Stage]:
    return list(pipeline.stages.all())


def make_reason(name: str = "Price") -> LostReason:
    return LostReason.objects.create(name=name)


def make_deal(stage: Stage | None = None, *, title: str = "Acme pilot", **fields) -> Deal:
    """A deal row written directly (not through deal_create: no stage history, no attribution
    copied from the contact). Without a stage, in the "New" stage of a "Sales" pipeline."""
    if stage is None:
        pipeline, _ = Pipeline.objects.get_or_create(name="Sales")
        stage, _ = Stage.objects.get_or_create(pipeline=pipeline, name="New")
    return Deal.objects.create(pipeline=stage.pipeline, stage=stage, title=title, **fields)
