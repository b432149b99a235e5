"""The drill's workload: a tiny Flask app whose /health names the version it was built from."""

import os

from flask import Flask, jsonify

UNKNOWN_VERSION = "unknown"

# APP_BROKEN, baked in at build time, makes a deliberately broken build of the same source: the
# drill's bad-deploy fault ships it to prove its watchdog catches a bad release.
#   unhealthy      /health answers 503 {"status": "failing"}
#   wrong-version  /health answers ok, but with another version than the one baked in
BROKEN_MODES = ("unhealthy", "wrong-version")


def broken_mode() -> str:
    mode = os.environ.get("APP_BROKEN", "").strip()
    return mode if mode in BROKEN_MODES else ""


def app_version() -> str:
    """The version baked into the image at build time (APP_VERSION), or "unknown"."""
    return os.environ.get("APP_VERSION", "").strip() or UNKNOWN_VERSION


def create_app() -> Flask:
    app = Flask(__name__)
    version = app_version()
    broken = broken_mode()

    @app.get("/health")
    def health():
        if broken == "unhealthy":
            return jsonify(status="failing", version=version), 503
        if broken == "wrong-version":
            return jsonify(status="ok", version=version + "-broken")
        return jsonify(status="ok", version=version)

    @app.get("/")
    def index():
        return (
            "<!doctype html><title>flask-app</title>"
            f"<h1>flask-app</h1><p>version <code>{version}</code></p>"
        )

    @app.errorhandler(404)
    def not_found(_error):
        return jsonify(error="not found"), 404

    return app


app = create_app()
