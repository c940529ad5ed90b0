"""Shadow testing (specification `shadow_tester.py`): ACTIVE and SHADOW side by side, then promote or reject."""

from app.shadow_tester.rows import InvalidPredictionError, ShadowPrediction
from app.shadow_tester.service import ShadowTester, horizon_of
from app.shadow_tester.stats import ModelMetrics, ShadowEvaluationResult, Thresholds, evaluate_pairs, per_sample_pnl

__all__ = [
    "InvalidPredictionError",
    "ModelMetrics",
    "ShadowEvaluationResult",
    "ShadowPrediction",
    "ShadowTester",
    "Thresholds",
    "evaluate_pairs",
    "horizon_of",
    "per_sample_pnl",
]
