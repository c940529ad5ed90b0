"""The operator's command line (entry: `python -m workers.cli`)."""
