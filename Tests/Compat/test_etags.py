"""ETags: `get(etag=True)`, `set_if_unchanged` and `get_if_changed`."""

from __future__ import annotations

from compat_helpers import assert_json_identical

EMPTY_ETAG = "null_etag"


def read_with_etag(ref):
    """`ref.get(etag=True)`, asserting the ETag is a non-empty string."""
    value, etag = ref.get(etag=True)
    assert isinstance(etag, str) and etag, f"missing ETag: {etag!r}"
    return value, etag


def test_get_with_etag_returns_value_and_etag(root):
    """`get(etag=True)` returns the value plus a stable, non-empty ETag."""
    ref = root.child("doc")
    ref.set({"a": 1, "b": [True, "x"]})

    value, etag = read_with_etag(ref)
    assert_json_identical(value, {"a": 1, "b": [True, "x"]})
    assert read_with_etag(ref) == (value, etag), "ETag changed without a write"


def test_etag_changes_when_the_value_changes(root):
    """Each different value has a different ETag; the ETag follows content, not time."""
    ref = root.child("doc")
    ref.set({"n": 1})
    _, first = read_with_etag(ref)

    ref.set({"n": 2})
    value, second = read_with_etag(ref)
    assert_json_identical(value, {"n": 2})
    assert second != first

    ref.child("n").set(3)  # a write below the location also changes its ETag
    value, third = read_with_etag(ref)
    assert_json_identical(value, {"n": 3})
    assert third not in (first, second)

    ref.set({"n": 1})  # same content as the first read: same ETag again
    assert read_with_etag(ref) == ({"n": 1}, first)


def test_etag_of_an_empty_location(root):
    """A location with no data reads as None with the `null_etag` ETag."""
    assert root.child("nothing/here").get(etag=True) == (None, EMPTY_ETAG)


def test_set_if_unchanged_with_current_etag_writes(root):
    """With the current ETag, the write happens and the new ETag is returned."""
    ref = root.child("doc")
    ref.set({"version": 1})
    _, etag = read_with_etag(ref)

    success, value, new_etag = ref.set_if_unchanged(etag, {"version": 2})

    assert success is True
    assert_json_identical(value, {"version": 2})
    assert isinstance(new_etag, str) and new_etag and new_etag != etag
    assert read_with_etag(ref) == ({"version": 2}, new_etag)


def test_set_if_unchanged_with_stale_etag_does_not_write(root):
    """With a stale ETag, nothing is written and the current value and ETag come back."""
    ref = root.child("doc")
    ref.set({"version": 1})
    _, stale = read_with_etag(ref)
    ref.set({"version": 2})
    _, current = read_with_etag(ref)

    success, value, etag = ref.set_if_unchanged(stale, {"version": 3})

    assert success is False
    assert_json_identical(value, {"version": 2})
    assert etag == current
    assert read_with_etag(ref) == ({"version": 2}, current)


def test_set_if_unchanged_with_a_made_up_etag_does_not_write(root):
    """An ETag the server never issued is a mismatch, not an error."""
    ref = root.child("doc")
    ref.set("original")
    _, current = read_with_etag(ref)

    assert ref.set_if_unchanged("not-a-real-etag", "changed") == (False, "original", current)
    assert ref.get() == "original"


def test_set_if_unchanged_creates_an_empty_location(root):
    """The `null_etag` of an empty location lets `set_if_unchanged` create it once."""
    ref = root.child("fresh")
    value, etag = ref.get(etag=True)
    assert (value, etag) == (None, EMPTY_ETAG)

    success, value, created = ref.set_if_unchanged(etag, {"created": True})
    assert (success, value) == (True, {"created": True})

    # The location is no longer empty, so the same precondition now fails.
    outcome = ref.set_if_unchanged(EMPTY_ETAG, {"created": False})
    assert outcome == (False, {"created": True}, created)
    assert_json_identical(ref.get(), {"created": True})


def test_set_if_unchanged_on_existing_data_with_null_etag_fails(root):
    """`null_etag` does not match a location that has data."""
    ref = root.child("doc")
    ref.set(5)
    _, current = read_with_etag(ref)
    assert ref.set_if_unchanged(EMPTY_ETAG, 6) == (False, 5, current)
    assert ref.get() == 5


def test_get_if_changed_with_current_etag_reports_unchanged(root):
    """With the current ETag, `get_if_changed` answers (False, None, None)."""
    ref = root.child("doc")
    ref.set({"a": "b"})
    _, etag = read_with_etag(ref)
    assert ref.get_if_changed(etag) == (False, None, None)


def test_get_if_changed_after_a_write_returns_new_value_and_etag(root):
    """After a write, `get_if_changed` with the old ETag returns the new value and ETag."""
    ref = root.child("doc")
    ref.set({"a": "b"})
    _, old = read_with_etag(ref)
    ref.set({"a": "c", "d": [1, 2]})
    _, current = read_with_etag(ref)

    changed, value, etag = ref.get_if_changed(old)

    assert changed is True
    assert_json_identical(value, {"a": "c", "d": [1, 2]})
    assert etag == current
    assert ref.get_if_changed(etag) == (False, None, None)


def test_get_if_changed_on_an_empty_location(root):
    """`null_etag` is current for an empty location; once data appears it is stale."""
    ref = root.child("later")
    assert ref.get_if_changed(EMPTY_ETAG) == (False, None, None)

    ref.set("now")
    _, current = read_with_etag(ref)
    assert ref.get_if_changed(EMPTY_ETAG) == (True, "now", current)
