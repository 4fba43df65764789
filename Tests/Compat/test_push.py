"""`Reference.push`: server-generated, chronologically ordered child keys."""

from __future__ import annotations

from compat_helpers import assert_json_identical, assert_push_id

PUSH_COUNT = 25


def test_push_returns_a_reference_named_by_a_push_id(root):
    """The new child's key is a 20-character push id and it holds the pushed value."""
    messages = root.child("messages")
    child = messages.push({"text": "hello", "n": 1})

    assert_push_id(child.key)
    assert child.path == f"/messages/{child.key}"
    assert_json_identical(child.get(), {"text": "hello", "n": 1})
    assert_json_identical(messages.get(), {child.key: {"text": "hello", "n": 1}})


def test_push_ids_increase_in_push_order(root):
    """Keys pushed one after another (many within a millisecond) sort in push order."""
    items = root.child("items")
    keys = [items.push({"seq": seq}).key for seq in range(PUSH_COUNT)]

    for key in keys:
        assert_push_id(key)
    assert len(set(keys)) == PUSH_COUNT, "push ids repeated"
    assert keys == sorted(keys), "push ids are not in increasing order"
    assert_json_identical(items.get(), {key: {"seq": seq} for seq, key in enumerate(keys)})


def test_push_without_a_value_stores_an_empty_string(root):
    """`push()` with no argument creates a child holding ''."""
    child = root.child("list").push()
    assert_push_id(child.key)
    assert_json_identical(child.get(), "")


def test_push_of_scalars_returns_them_all(root):
    """Pushed scalars of every type come back under their keys."""
    values = ["text", 7, 2.5, True, False, ["a", "b"]]
    log = root.child("log")
    keys = [log.push(value).key for value in values]
    assert_json_identical(log.get(), dict(zip(keys, values)))
