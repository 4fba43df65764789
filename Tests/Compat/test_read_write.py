"""`Reference.set`, `get`, `update` and `delete` through firebase-admin."""

from __future__ import annotations

import pytest

from compat_helpers import assert_json_identical

# Every JSON type, unicode (including characters outside the BMP, which the SDK sends as
# surrogate-pair escapes), control characters, deep nesting and arrays of mixed values.
DOCUMENT = {
    "strings": {
        "plain": "hello",
        "unicode": "héllo wörld, 日本語, Ελληνικά, 🔥🚀",
        "escapes": 'quote " backslash \\ slash / newline \n tab \t control \u0001 \u001f',
        "empty": "",
    },
    "ints": {
        "zero": 0,
        "positive": 42,
        "negative": -17,
        "millis": 1_700_000_000_123,
        "max_safe": 2**53 - 1,
        "min_safe": -(2**53 - 1),
    },
    "floats": {
        "half": 0.5,
        "tenth": 0.1,
        "pi": 3.141592653589793,
        "negative": -2.75,
        "tiny": 1.5e-300,
        "huge": 1.25e300,
    },
    "bools": {"yes": True, "no": False},
    "list": [1, "two", 3.5, True, False, {"nested": ["deep", 0]}, ["inner", 2]],
    "nested": {"level1": {"level2": {"level3": {"level4": {"leaf": "bottom"}}}}},
    "keys": {"clé": "value", "键": 1, "emoji 🔑": True, "with space": "ok", "-dash_under": 2},
}


def test_set_then_get_round_trips_every_json_type(root):
    """A nested document comes back with identical values and types."""
    ref = root.child("doc")
    ref.set(DOCUMENT)
    assert_json_identical(ref.get(), DOCUMENT)


def test_get_of_a_child_returns_the_subtree(root):
    """Reading below the written location returns just that part of it."""
    root.child("doc").set(DOCUMENT)
    assert_json_identical(root.child("doc/list").get(), DOCUMENT["list"])
    assert_json_identical(root.child("doc/strings/unicode").get(), DOCUMENT["strings"]["unicode"])
    assert_json_identical(root.child("doc/keys/键").get(), 1)
    assert_json_identical(root.get(), {"doc": DOCUMENT})


@pytest.mark.parametrize(
    "value",
    ["text", "日本語 🔥", "", 0, -1, 123456789, 2.5, True, False, [1, 2, 3], {"k": "v"}],
    ids=repr,
)
def test_set_then_get_round_trips_a_top_level_value(root, value):
    """Scalars, lists and dicts each round-trip at a leaf location."""
    ref = root.child("leaf")
    ref.set(value)
    assert_json_identical(ref.get(), value)


@pytest.mark.parametrize(
    ("written", "read_back"),
    [
        # Firebase stores arrays as integer-keyed objects and renders an object as an array
        # when every key is an array index and the largest key < 2 * the number of keys.
        ([1, None, 3], [1, None, 3]),
        (["a", None, None], ["a"]),
        ([None, None, "c"], {"2": "c"}),
        ({"0": "a", "1": "b", "2": "c"}, ["a", "b", "c"]),
        ({"0": "a", "3": "d"}, ["a", None, None, "d"]),
        ({"1": "b", "2": "c"}, [None, "b", "c"]),
        ({"0": "a", "5": "f"}, {"0": "a", "5": "f"}),
        ({"01": "a", "1": "b"}, {"01": "a", "1": "b"}),
        # Empty objects and arrays hold no data, so they vanish.
        ({"a": {}, "b": [], "c": 1, "d": {"e": {}}}, {"c": 1}),
        ({"only": {"empty": []}}, None),
    ],
    ids=repr,
)
def test_arrays_and_empty_containers_follow_firebase_rules(root, written, read_back):
    """Lists with holes, integer-keyed dicts and empty containers read back like Firebase."""
    ref = root.child("value")
    ref.set(written)
    assert_json_identical(ref.get(), read_back)


def test_set_replaces_the_whole_location(root):
    """`set` overwrites; children missing from the new value are gone."""
    ref = root.child("node")
    ref.set({"a": 1, "b": {"c": 2}})
    ref.set({"d": 3})
    assert_json_identical(ref.get(), {"d": 3})


def test_update_changes_only_the_named_children(root):
    """`update` with plain and multi-path keys leaves every other child alone."""
    ref = root.child("profile")
    ref.set({
        "name": "Ada",
        "address": {"city": "London", "street": "St James's Square", "zip": "SW1"},
        "stats": {"posts": 3, "likes": 10},
        "tags": {"x": True},
    })

    ref.update({
        "address/city": "Paris",          # multi-path: replaces one grandchild
        "stats/likes": 11,
        "stats/new/deep": "created",      # multi-path into a location that did not exist
        "tags": {"y": True},              # plain key: replaces the whole child
        "age": 36,                        # plain key: adds a child
    })

    assert_json_identical(ref.get(), {
        "name": "Ada",
        "address": {"city": "Paris", "street": "St James's Square", "zip": "SW1"},
        "stats": {"posts": 3, "likes": 11, "new": {"deep": "created"}},
        "tags": {"y": True},
        "age": 36,
    })


def test_update_with_none_deletes_children(root):
    """A None value in `update` removes that child, including via a multi-path key."""
    ref = root.child("doc")
    ref.set({"keep": 1, "drop": 2, "nested": {"drop": 3, "keep": 4}})
    ref.update({"drop": None, "nested/drop": None})
    assert_json_identical(ref.get(), {"keep": 1, "nested": {"keep": 4}})


def test_update_does_not_touch_siblings_of_the_reference(root):
    """Updating one location leaves the rest of the database unchanged."""
    root.set({"target": {"a": 1}, "sibling": {"a": 1}})
    root.child("target").update({"a": 2, "b/c": 3})
    assert_json_identical(root.get(), {"target": {"a": 2, "b": {"c": 3}}, "sibling": {"a": 1}})


def test_delete_makes_get_return_none(root):
    """After `delete`, the location reads as None and its siblings survive."""
    root.set({"gone": {"deep": {"value": 1}, "other": 2}, "kept": "yes"})
    root.child("gone").delete()
    assert root.child("gone").get() is None
    assert root.child("gone/deep/value").get() is None
    assert_json_identical(root.get(), {"kept": "yes"})


def test_delete_of_the_last_child_empties_the_parent(root):
    """Deleting the only leaf leaves no empty parent objects behind."""
    root.child("a/b/c").set("leaf")
    root.child("a/b/c").delete()
    assert root.child("a").get() is None
    assert root.get() is None


def test_delete_of_a_missing_location_is_harmless(root):
    """Deleting something that never existed succeeds and changes nothing."""
    root.set({"x": 1})
    root.child("never/was").delete()
    assert_json_identical(root.get(), {"x": 1})
