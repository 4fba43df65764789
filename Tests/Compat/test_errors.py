"""Error mapping: invalid writes surface as firebase_admin exceptions and change nothing."""

from __future__ import annotations

import pytest
from firebase_admin import exceptions

from compat_helpers import assert_json_identical

INITIAL = {"keep": 1, "nested": {"also": "kept"}}
FORBIDDEN_KEY_CHARACTERS = [".", "$", "#", "[", "]", "/"]


def assert_invalid_argument(error_info: pytest.ExceptionInfo) -> None:
    """The error is a 400 carrying the server's `{"error": ...}` message."""
    error = error_info.value
    assert error.code == exceptions.INVALID_ARGUMENT
    assert error.http_response is not None
    assert error.http_response.status_code == 400
    body = error.http_response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]
    assert str(error) == body["error"]


@pytest.mark.parametrize("character", FORBIDDEN_KEY_CHARACTERS)
def test_set_with_invalid_key_raises_invalid_argument(root, character):
    """A key containing . $ # [ ] or / is rejected with 400 and nothing is written."""
    ref = root.child("doc")
    ref.set(INITIAL)

    with pytest.raises(exceptions.InvalidArgumentError) as error_info:
        ref.set({f"a{character}b": 1})

    assert_invalid_argument(error_info)
    assert_json_identical(ref.get(), INITIAL)


def test_invalid_key_deep_inside_a_value_rejects_the_whole_write(root):
    """One bad key anywhere in the value rejects it all; valid siblings are not written."""
    ref = root.child("doc")
    ref.set(INITIAL)

    with pytest.raises(exceptions.InvalidArgumentError) as error_info:
        ref.set({"fine": 1, "deeper": {"ok": True, "bad.key": 2}})

    assert_invalid_argument(error_info)
    assert_json_identical(ref.get(), INITIAL)


def test_update_with_invalid_key_in_a_value_changes_nothing(root):
    """A multi-path update with one invalid value is rejected as a whole."""
    ref = root.child("doc")
    ref.set(INITIAL)

    with pytest.raises(exceptions.InvalidArgumentError) as error_info:
        ref.update({"keep": 2, "nested/new": {"a.b": 1}})

    assert_invalid_argument(error_info)
    assert_json_identical(ref.get(), INITIAL)


def test_push_with_invalid_key_creates_no_child(root):
    """A rejected `push` leaves the list untouched."""
    ref = root.child("list")
    ref.set(INITIAL)

    with pytest.raises(exceptions.InvalidArgumentError) as error_info:
        ref.push({"a$b": 1})

    assert_invalid_argument(error_info)
    assert_json_identical(ref.get(), INITIAL)


def test_set_if_unchanged_with_invalid_key_raises(root):
    """A conditional write with a bad value is an error, not a failed precondition."""
    ref = root.child("doc")
    ref.set(INITIAL)
    _, etag = ref.get(etag=True)

    with pytest.raises(exceptions.InvalidArgumentError) as error_info:
        ref.set_if_unchanged(etag, {"a#b": 1})

    assert_invalid_argument(error_info)
    assert_json_identical(ref.get(), INITIAL)
