"""Tabular Q-learning for the two RL agents (meta strategy, position sizing).

Pure logic lives here (state and action spaces, discretisation bins, rewards, the
Q-learning rule, the safety clamp, the snapshot format); `store.py` keeps the tables in
the database and the artifact store, and `agent.py` is the service both agents share.
"""
