"""Thin Celery tasks: unpack ids, call one service function in app/, return a small dict."""
