"""Score models for tests, written straight to the table (the services' validation is tested on
its own)."""

from scoring.models import Score, ScoreModel


def make_model(*, name: str = "Lead", fit=(), engagement=(), **fields) -> ScoreModel:
    return ScoreModel.objects.create(
        name=name, fit_rules=list(fit), engagement_rules=list(engagement), **fields
    )


def stored_scores(model: ScoreModel) -> dict[int, tuple]:
    return {
        s.contact_id: (s.score, s.fit, s.engagement, s.explanation) for s in Score.objects.filter(model=model)
    }


def score_of(model: ScoreModel, contact) -> int:
    row = Score.objects.filter(model=model, contact=contact).first()
    return row.score if row else 0


def adds_up(explanation: list[dict], score: int) -> bool:
    return sum(line["points"] for line in explanation) == score
