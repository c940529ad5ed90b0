"""`python -m app.core.topics > docs/events.md`."""

import sys

from app.core.topics.catalogue import catalogue

sys.stdout.write(catalogue())
