"""How firebase-admin finds the emulator, and namespace separation on the server."""

from __future__ import annotations

import uuid

import firebase_admin
import pytest
from firebase_admin import db

from compat_helpers import (
    EMULATOR_HOST_ENV_VAR,
    HOST,
    HTTP_TIMEOUT_SECONDS,
    EmulatorOnlyCredential,
    assert_json_identical,
)


@pytest.fixture
def env_var_app(hearth_server, namespace, monkeypatch):
    """An app configured the usual production way, redirected by FIREBASE_DATABASE_EMULATOR_HOST."""
    monkeypatch.setenv(EMULATOR_HOST_ENV_VAR, f"{HOST}:{hearth_server.port}")
    app = firebase_admin.initialize_app(
        credential=EmulatorOnlyCredential(),
        options={
            "databaseURL": f"https://{namespace}.firebaseio.com",
            "httpTimeout": HTTP_TIMEOUT_SECONDS,
        },
        name=f"hearth-compat-env-{uuid.uuid4().hex[:8]}",
    )
    try:
        yield app
    finally:
        firebase_admin.delete_app(app)


def test_emulator_host_env_var_uses_the_first_host_label_as_namespace(env_var_app, raw, namespace):
    """With the env var set, `https://<ns>.firebaseio.com` writes go to namespace `<ns>`."""
    db.reference("/greeting", app=env_var_app).set({"text": "hi"})

    assert_json_identical(raw.get_json("greeting"), {"text": "hi"})
    assert_json_identical(db.reference("/", app=env_var_app).get(), {"greeting": {"text": "hi"}})


def test_namespaces_are_isolated(firebase_app, hearth_server, root, namespace):
    """The same path in two namespaces holds two independent values."""
    other_namespace = f"{namespace[:50]}-other"
    other = db.reference("/", app=firebase_app, url=hearth_server.database_url(other_namespace))

    root.child("shared/path").set("mine")
    other.child("shared/path").set("theirs")
    root.child("only-here").set(True)

    assert_json_identical(root.get(), {"shared": {"path": "mine"}, "only-here": True})
    assert_json_identical(other.get(), {"shared": {"path": "theirs"}})

    other.delete()
    assert other.get() is None
    assert_json_identical(root.child("shared/path").get(), "mine")


def test_written_namespaces_are_listed_by_inspect(root, raw, namespace):
    """`/.inspect/databases.json` names every namespace that holds data."""
    root.child("x").set(1)
    response = raw.session.get(f"{raw.base_url}/.inspect/databases.json",
                               timeout=HTTP_TIMEOUT_SECONDS)
    assert response.status_code == 200, response.text
    databases = response.json()
    assert isinstance(databases, list)
    assert namespace in [database.get("name") for database in databases]
