"""Quantum Trader CLM: the continuous-learning backend of a crypto trading system."""

__version__ = "0.1.0"
