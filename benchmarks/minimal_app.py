"""The floor for throughput: a Flask app that reads the request and answers small JSON.

``bench_throughput.py`` serves it with the service's own gunicorn config and
worker count (``gunicorn --config service/gunicorn.conf.py --pythonpath
benchmarks minimal_app:app``) and sends it the very request it sends the
service, so the ratio of the two rates is what the service's own work costs.
The body is read, not parsed: a socket closed with unread bytes in it is
reset, and the answer could be lost with it.
"""

from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask("minimal")


@app.route("/minimal", methods=["GET", "POST"])
def minimal():
    return jsonify(status="ok", received_bytes=len(request.get_data()))


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")
