import pytest

from pipeline.models import Deal, Pipeline, Stage


@pytest.fixture
def stage(db):
    return Stage.objects.create(pipeline=Pipeline.objects.create(name="Sales"), name="Demo", probability=40)


@pytest.fixture
def deal(stage):
    return Deal.objects.create(pipeline=stage.pipeline, stage=stage, title="Acme pilot", amount=1000)
