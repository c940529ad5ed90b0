"""What the operator reads and the system does to itself: status, read models, schedule, alerts, metrics, retention."""
