"""Market regime detection with hysteresis; publishes `regime.changed`."""
