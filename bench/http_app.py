"""Bench-only WSGI entry for `b_http.py`: the real service, plus a bare Flask "hello" in the same gunicorn worker.

    gunicorn -k sync -w 2 -b 127.0.0.1:8765 --pythonpath bench 'http_app:app'

`/bench-hello` goes to a bare Flask app that returns a short text (the framework + server + load-generator ceiling,
performance.md L1); every other path goes to `transitions.create_app()`, built from the TRANSITIONS_* environment
exactly as the README's production command builds it. Nothing in the service is changed or wrapped: the
dispatcher only picks which of the two WSGI callables answers.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from transitions import create_app

HELLO_PREFIX = "/bench-hello"

hello = Flask("bench_hello")


@hello.get("/")
def index() -> str:
    return "Hello, World!"


service = create_app()
app = DispatcherMiddleware(service, {HELLO_PREFIX: hello})
