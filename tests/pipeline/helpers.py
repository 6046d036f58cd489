from pipeline.models import LostReason, Pipeline, Stage


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
