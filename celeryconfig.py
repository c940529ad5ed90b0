"""Celery configuration, read by `workers.celery_app` (`app.config_from_object`).

Every value that depends on the deployment comes from `app.core.settings` (environment).
"""

from __future__ import annotations

from kombu import Exchange, Queue

from app.core.settings import get_settings
from workers.routing import route_task

_settings = get_settings()

broker_url = _settings.broker_url
result_backend = _settings.result_backend

# JSON only: messages carry ids and small dicts, never pickled objects or frames.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]

# A task is acknowledged after it finishes; a worker lost mid-task means redelivery.
task_acks_late = True
task_reject_on_worker_lost = True
# Long tasks: a worker takes one message at a time, so others can take the rest.
worker_prefetch_multiplier = 1
task_track_started = True
# Keep the real stdout: training libraries (Lightning, for N-HiTS/PatchTST) read
# sys.stdout.encoding, which Celery's LoggingProxy lacks.
worker_redirect_stdouts = False
task_send_sent_event = True
worker_send_task_events = True

# With the Redis broker an unacknowledged task is redelivered after visibility_timeout:
# it must exceed the longest training run (DESIGN: Celery traps), here 6 hours.
VISIBILITY_TIMEOUT_SECONDS = 6 * 3600
broker_transport_options = {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS}
result_backend_transport_options = {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS}
result_expires = 7 * 24 * 3600
broker_connection_retry_on_startup = True

# Embedded mode: no broker, tasks run in the caller's process.
task_always_eager = _settings.embedded
task_eager_propagates = True

timezone = "UTC"
enable_utc = True

task_default_queue = "default"
task_queues = (
    Queue("default", Exchange("default"), routing_key="default"),
    Queue("cpu", Exchange("cpu"), routing_key="cpu"),
    Queue("gpu", Exchange("gpu"), routing_key="gpu"),
)
task_routes = (route_task,)

beat_scheduler = "workers.beat:PolicyScheduler"
