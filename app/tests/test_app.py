import importlib

import pytest

import app as app_module


@pytest.fixture
def client_for(monkeypatch):
    def make(version):
        if version is None:
            monkeypatch.delenv("APP_VERSION", raising=False)
        else:
            monkeypatch.setenv("APP_VERSION", version)
        flask_app = importlib.reload(app_module).create_app()
        apps.append(flask_app)  # the test client only holds a weak reference to its app
        return flask_app.test_client()

    apps = []
    return make


def test_health_reports_ok_and_the_baked_version(client_for):
    resp = client_for("a1b2c3d").get("/health")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    assert resp.get_json() == {"status": "ok", "version": "a1b2c3d"}


@pytest.mark.parametrize("version", [None, "", "   "])
def test_health_without_a_version_says_unknown(client_for, version):
    resp = client_for(version).get("/health")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "version": "unknown"}


def test_index_names_the_version(client_for):
    resp = client_for("a1b2c3d").get("/")
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    assert b"a1b2c3d" in resp.data


def test_unknown_path_is_a_json_404(client_for):
    resp = client_for("a1b2c3d").get("/no-such-page")
    assert resp.status_code == 404
    assert resp.mimetype == "application/json"
    assert resp.get_json() == {"error": "not found"}


def test_module_level_app_serves_health(monkeypatch):
    monkeypatch.setenv("APP_VERSION", "deadbee")
    module = importlib.reload(app_module)
    assert module.app.test_client().get("/health").get_json()["version"] == "deadbee"


@pytest.mark.parametrize(
    "mode, status, body",
    [
        ("unhealthy", 503, {"status": "failing", "version": "a1b2c3d"}),
        ("wrong-version", 200, {"status": "ok", "version": "a1b2c3d-broken"}),
        ("nonsense", 200, {"status": "ok", "version": "a1b2c3d"}),
    ],
)
def test_a_broken_build_fails_its_health_check(client_for, monkeypatch, mode, status, body):
    monkeypatch.setenv("APP_BROKEN", mode)
    resp = client_for("a1b2c3d").get("/health")
    assert resp.status_code == status
    assert resp.get_json() == body
