"""The drill's workload: a tiny Flask app whose /health names the version it was built from."""

import os

from flask import Flask, jsonify

UNKNOWN_VERSION = "unknown"


def app_version() -> str:
    """The version baked into the image at build time (APP_VERSION), or "unknown"."""
    return os.environ.get("APP_VERSION", "").strip() or UNKNOWN_VERSION


def create_app() -> Flask:
    app = Flask(__name__)
    version = app_version()

    @app.get("/health")
    def health():
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
