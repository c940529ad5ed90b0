"""The Celery side: app, queues, routing, beat schedule, worker entry points."""
