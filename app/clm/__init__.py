"""Continuous Learning Manager (specification `clm.py`): the control loop.

`ContinuousLearningManager` turns events into actions (the specification's reaction
table); `guard` keeps a storm of triggers from starting more than one job; `drift_check`
runs the scheduled drift checks.
"""

from app.clm.guard import TriggerDecision
from app.clm.manager import ContinuousLearningManager

__all__ = ["ContinuousLearningManager", "TriggerDecision"]
