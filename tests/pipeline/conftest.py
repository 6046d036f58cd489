import pytest

from pipeline.models import Pipeline, Stage
from tests.factories import make_deal


@pytest.fixture
def stage(db):
    return Stage.objects.create(pipeline=Pipeline.objects.create(name="Sales"), name="Demo", probability=40)


@pytest.fixture
def deal(stage):
    return make_deal(stage, title="Acme pilot", amount=1000)
