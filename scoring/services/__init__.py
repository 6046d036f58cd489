"""Lead scores' writes. Other apps call these (segments' drain: `scores_refresh`)."""

from scoring.services.compute import (
    combine,
    score_model_recompute,
    scores_compute,
    scores_decay_refresh,
    scores_refresh,
)
from scoring.services.models import score_model_create, score_model_delete, score_model_update

__all__ = [
    "combine",
    "score_model_create",
    "score_model_delete",
    "score_model_recompute",
    "score_model_update",
    "scores_compute",
    "scores_decay_refresh",
    "scores_refresh",
]
