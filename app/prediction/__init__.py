"""Predictions for the AI Trading Engine (the live path)."""
