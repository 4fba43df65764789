"""Queries: `order_by_*` through firebase-admin and the REST query parameters they map to.

The Python SDK sends `orderBy` (a JSON string: `"$key"`, `"$value"` or a child path) with
`startAt` / `endAt` / `equalTo` (JSON values) and `limitToFirst` / `limitToLast`, then
re-sorts the answer client-side into an `OrderedDict`. So an SDK check alone would not notice
a server that answers in the wrong order; every SDK case here is therefore repeated over
plain REST, where the body's key order must already be the query order (decoded with
`object_pairs_hook`, which keeps the document order).

What is covered:

* The dinosaur queries of firebase-admin-python's own integration tests
  (`integration/test_db.py`, `TestAdvancedQueries`) on the same data
  (`tests/data/dinosaurs.json`), plus more ranges, limits and key/value orderings.
* Firebase's ordering across types (null, false, true, numbers, strings, objects), `$key`
  ordering (32-bit integer keys first), `$priority`, child paths with spaces.
* Key tie-breaks (`startAt=3,"b"`) and the exclusive bounds `startAfter` / `endBefore`, which
  the SDK cannot send, over REST.
* Malformed queries: Firebase's exact 400 messages over REST, and the SDK raising
  `InvalidArgumentError` with them.
* Index enforcement on a server started without `--emulator` and with an `.indexOn` in its
  `--rules` file: declared indexes work for non-admin callers, undeclared ones give
  Firebase's `Index not defined` error, admins need no index, uploaded rules change the
  indexes. In emulator mode (the session server) no index is ever required.
* Shallow key paging the way firebase-tools does it (`shallow=true&limitToFirst=N`, then
  `startAfter="<last key>"`).
* Writes after queries: later queries see the new order, including a change deep inside a
  child that moves it across a limit boundary.

Hearth answers child and value queries by scanning when no index is declared, and from an
index when the rules declare one. Most tests therefore run three times (`index_mode`): without
rules ("scan"), with rules uploaded after the data was written ("index-built-on-load") and
with rules uploaded before it ("index-kept-by-writes").
"""

from __future__ import annotations

import collections
import json
import math
import os
import random
import secrets
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import firebase_admin
import pytest
import requests
from firebase_admin import _utils, db, exceptions

from compat_helpers import HOST, HTTP_TIMEOUT_SECONDS, EmulatorOnlyCredential, assert_json_identical

# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------

# firebase-admin-python's tests/data/dinosaurs.json, unchanged.
DINOSAURS = {
    "dinosaurs": {
        "bruhathkayosaurus": {
            "appeared": -70000000, "height": 25, "length": 44, "order": "saurischia",
            "vanished": -70000000, "weight": 135000, "ratings": {"pos": 1},
        },
        "lambeosaurus": {
            "appeared": -76000000, "height": 2.1, "length": 12.5, "order": "ornithischia",
            "vanished": -75000000, "weight": 5000, "ratings": {"pos": 2},
        },
        "linhenykus": {
            "appeared": -85000000, "height": 0.6, "length": 1, "order": "theropoda",
            "vanished": -75000000, "weight": 3, "ratings": {"pos": 3},
        },
        "pterodactyl": {
            "appeared": -150000000, "height": 0.6, "length": 0.8, "order": "pterosauria",
            "vanished": -148500000, "weight": 2, "ratings": {"pos": 4},
        },
        "stegosaurus": {
            "appeared": -155000000, "height": 4, "length": 9, "order": "ornithischia",
            "vanished": -150000000, "weight": 2500, "ratings": {"pos": 5},
        },
        "triceratops": {
            "appeared": -68000000, "height": 3, "length": 8, "order": "ornithischia",
            "vanished": -66000000, "weight": 11000, "ratings": {"pos": 6},
        },
    },
    "scores": {
        "bruhathkayosaurus": 55, "lambeosaurus": 21, "linhenykus": 80,
        "pterodactyl": 93, "stegosaurus": 5, "triceratops": 22,
    },
}

# The indexes of firebase-admin-python's tests/data/dinosaurs_index.json, at `dinodb/...`.
DINO_INDEXES = {
    "dinodb/dinosaurs": ["height", "ratings/pos"],
    "dinodb/scores": [".value"],
}

BRUH, LAMB, LINH, PTERO, STEG, TRIC = (
    "bruhathkayosaurus", "lambeosaurus", "linhenykus", "pterodactyl", "stegosaurus", "triceratops",
)
ALL_BY_KEY = [BRUH, LAMB, LINH, PTERO, STEG, TRIC]
# `TestAdvancedQueries.height_sorted`: the 0.6 tie is broken by key.
HEIGHT_SORTED = [LINH, PTERO, LAMB, TRIC, STEG, BRUH]
SCORE_SORTED = [STEG, LAMB, TRIC, BRUH, LINH, PTERO]

# SDK query method -> REST parameter.
REST_PARAMETER = {
    "start_at": "startAt",
    "end_at": "endAt",
    "equal_to": "equalTo",
    "limit_to_first": "limitToFirst",
    "limit_to_last": "limitToLast",
}

INDEX_MODES = ("scan", "index-built-on-load", "index-kept-by-writes")


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


class Pairs(list):
    """A JSON object decoded as its `(key, value)` pairs, in document order."""


def body_keys(response: requests.Response) -> list[str] | None:
    """The top-level keys of a 200 JSON-object body, in the order the server wrote them.

    Returns None for a `null` body. Fails for any other status or body shape.
    """
    assert response.status_code == 200, (response.status_code, response.text)
    document = json.loads(response.text, object_pairs_hook=Pairs)
    if document is None:
        return None
    assert isinstance(document, Pairs), f"expected a JSON object, got {response.text[:300]}"
    return [key for key, _ in document]


def rest_params(order_by: str, filters: dict[str, Any] | None = None) -> dict[str, str]:
    """The REST query for `order_by` plus SDK-style `filters` (`{"start_at": 3, ...}`).

    Values are JSON-encoded like the SDK does, except that non-ASCII characters are sent as
    UTF-8 rather than `\\uXXXX` escapes, so both spellings get exercised.
    """
    params = {"orderBy": json.dumps(order_by)}
    for name, value in (filters or {}).items():
        rest_name = REST_PARAMETER[name]
        params[rest_name] = str(value) if name.startswith("limit") else json.dumps(
            value, ensure_ascii=False)
    return params


def sdk_query(ref: db.Reference, order_by: str, filters: dict[str, Any] | None = None) -> db.Query:
    """`ref.order_by_*()` for `order_by`, then each of `filters` (SDK method name -> argument)."""
    if order_by == "$key":
        query = ref.order_by_key()
    elif order_by == "$value":
        query = ref.order_by_value()
    else:
        query = ref.order_by_child(order_by)
    for name, value in (filters or {}).items():
        query = getattr(query, name)(value)
    return query


def assert_rest_order(raw, path: str, params: dict[str, str], expected: list[str],
                      source: dict | None = None) -> None:
    """`GET path` with `params` answers exactly the children `expected`, in that order.

    With `source` (the data at `path`), the values must be those children's full values.
    """
    response = raw.request("GET", path, params=params)
    assert body_keys(response) == expected, f"GET {path} {params}: {response.text[:500]}"
    if source is not None:
        assert_json_identical(response.json(), {key: source[key] for key in expected})


def rules_declaring(indexes: dict[str, list[str]], **top_level: Any) -> dict:
    """A rules document with `.indexOn` at each location of `indexes` (`"a/b" -> [...]`)."""
    rules: dict[str, Any] = dict(top_level)
    for location, index_on in indexes.items():
        node = rules
        for segment in location.split("/"):
            node = node.setdefault(segment, {})
        node[".indexOn"] = index_on
    return {"rules": rules}


def upload_rules(raw, rules: dict) -> None:
    """`PUT /.settings/rules.json` in the raw client's namespace (as the emulator owner)."""
    response = raw.request("PUT", ".settings/rules", data=json.dumps(rules))
    assert response.status_code == 200, (response.status_code, response.text)


def store(root: db.Reference, raw, index_mode: str, data: dict,
          indexes: dict[str, list[str]]) -> None:
    """Writes `data` at the namespace root; declares `indexes` as `index_mode` says.

    "scan" declares nothing; "index-built-on-load" uploads the rules after the write (the
    server indexes existing data); "index-kept-by-writes" uploads them first (the write
    goes into an existing index).
    """
    if index_mode == "index-kept-by-writes":
        upload_rules(raw, rules_declaring(indexes))
    root.set(data)
    if index_mode == "index-built-on-load":
        upload_rules(raw, rules_declaring(indexes))


def error_message(index_on: str, path: str) -> str:
    """Firebase's message for a query without a declared index."""
    return f'Index not defined, add ".indexOn": "{index_on}", for path "{path}", to the rules'


@pytest.fixture(params=INDEX_MODES)
def index_mode(request) -> str:
    """How the indexes of the test's data are declared (see the module docstring)."""
    return request.param


@pytest.fixture
def dino(root, raw, index_mode) -> db.Reference:
    """The dinosaur data at `dinodb`, indexed like firebase-admin-python's tests declare."""
    store(root, raw, index_mode, {"dinodb": DINOSAURS}, DINO_INDEXES)
    return root.child("dinodb")


# --------------------------------------------------------------------------------------
# The dinosaur queries
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DinoQuery:
    """One query on `dinodb/<location>` and the children it must return, in order."""

    id: str
    location: str
    order_by: str
    expected: list[str]
    filters: dict[str, Any] = field(default_factory=dict)


DINO_QUERIES = [
    # firebase-admin-python integration/test_db.py, TestAdvancedQueries.
    DinoQuery("order_by_key", "dinosaurs", "$key", ALL_BY_KEY),
    DinoQuery("order_by_value", "scores", "$value", SCORE_SORTED),
    DinoQuery("order_by_child", "dinosaurs", "height", HEIGHT_SORTED),
    DinoQuery("limit_first", "dinosaurs", "height", HEIGHT_SORTED[:2], {"limit_to_first": 2}),
    DinoQuery("limit_first_all", "dinosaurs", "height", HEIGHT_SORTED, {"limit_to_first": 10}),
    DinoQuery("limit_last", "dinosaurs", "height", HEIGHT_SORTED[-2:], {"limit_to_last": 2}),
    DinoQuery("limit_last_all", "dinosaurs", "height", HEIGHT_SORTED, {"limit_to_last": 10}),
    DinoQuery("start_at", "dinosaurs", "height", HEIGHT_SORTED[-2:], {"start_at": 3.5}),
    DinoQuery("end_at", "dinosaurs", "height", HEIGHT_SORTED[:4], {"end_at": 3.5}),
    DinoQuery("start_and_end_at", "dinosaurs", "height", HEIGHT_SORTED[-3:-1],
              {"start_at": 2.5, "end_at": 5}),
    DinoQuery("equal_to", "dinosaurs", "height", HEIGHT_SORTED[:2], {"equal_to": 0.6}),
    DinoQuery("order_by_nested_child", "dinosaurs", "ratings/pos", [PTERO, STEG, TRIC],
              {"start_at": 4}),
    DinoQuery("filter_by_key", "dinosaurs", "$key", [BRUH, LAMB], {"limit_to_first": 2}),
    DinoQuery("filter_by_value", "scores", "$value", [LINH, PTERO], {"limit_to_last": 2}),
    # More of the same kinds.
    DinoQuery("key_start_at", "dinosaurs", "$key", [LINH, PTERO, STEG, TRIC],
              {"start_at": LINH}),
    DinoQuery("key_prefix_with_uf8ff", "dinosaurs", "$key", [LAMB, LINH],
              {"start_at": "l", "end_at": "l\uf8ff"}),
    DinoQuery("key_end_at_limit_last", "dinosaurs", "$key", [LAMB, LINH],
              {"end_at": "p", "limit_to_last": 2}),
    DinoQuery("key_equal_to", "dinosaurs", "$key", [STEG], {"equal_to": STEG}),
    DinoQuery("value_equal_to", "scores", "$value", [LAMB], {"equal_to": 21}),
    DinoQuery("value_range", "scores", "$value", [TRIC, BRUH, LINH],
              {"start_at": 22, "end_at": 80}),
    DinoQuery("value_start_at_limit_first", "scores", "$value", [TRIC, BRUH],
              {"start_at": 22, "limit_to_first": 2}),
    DinoQuery("value_end_at", "scores", "$value", [STEG, LAMB], {"end_at": 21}),
    DinoQuery("value_limit_last_of_range", "scores", "$value", [BRUH, LINH],
              {"end_at": 90, "limit_to_last": 2}),
    DinoQuery("child_limit_last_one", "dinosaurs", "height", [BRUH], {"limit_to_last": 1}),
    DinoQuery("child_equal_to_limit_last", "dinosaurs", "height", [PTERO],
              {"equal_to": 0.6, "limit_to_last": 1}),
    DinoQuery("child_int_equals_float", "dinosaurs", "height", [BRUH], {"equal_to": 25.0}),
    DinoQuery("child_start_equals_end", "dinosaurs", "height", [LINH, PTERO],
              {"start_at": 0.6, "end_at": 0.6}),
    DinoQuery("child_string_equal_to", "dinosaurs", "order", [LAMB, STEG, TRIC],
              {"equal_to": "ornithischia"}),
    DinoQuery("child_string_start_at", "dinosaurs", "order", [PTERO, BRUH, LINH],
              {"start_at": "p"}),
    DinoQuery("nested_child_end_at", "dinosaurs", "ratings/pos", [BRUH, LAMB], {"end_at": 2}),
    DinoQuery("nested_child_limit_last", "dinosaurs", "ratings/pos", [STEG, TRIC],
              {"limit_to_last": 2}),
    DinoQuery("unindexed_child", "dinosaurs", "length", [PTERO, LINH, TRIC],
              {"limit_to_first": 3}),
    DinoQuery("negative_numbers", "dinosaurs", "appeared", [LINH, LAMB, BRUH, TRIC],
              {"start_at": -100000000}),
    DinoQuery("missing_child_orders_by_key", "dinosaurs", "wingspan", ALL_BY_KEY),
]


@pytest.mark.parametrize("case", DINO_QUERIES, ids=lambda case: case.id)
def test_dinosaur_query(dino, raw, case):
    """A query returns the right children in the right order, through the SDK and REST.

    The SDK returns an `OrderedDict` holding each child's full value; the REST body must
    list the same children in query order (the SDK would hide a wrong order by re-sorting).
    """
    source = DINOSAURS[case.location]

    result = sdk_query(dino.child(case.location), case.order_by, case.filters).get()

    assert isinstance(result, collections.OrderedDict)
    assert list(result) == case.expected
    assert_json_identical(dict(result), {key: source[key] for key in case.expected})
    assert_rest_order(raw, f"dinodb/{case.location}", rest_params(case.order_by, case.filters),
                      case.expected, source)


# --------------------------------------------------------------------------------------
# Ordering across types, keys and priorities
# --------------------------------------------------------------------------------------

MIXED_VALUES = {
    "f": False, "t": True, "neg": -3, "one": 1, "half": 2.5,
    "upper": "B", "lower": "a", "obj1": {"x": 1}, "obj2": {"a": "z"},
}
# false < true < numbers < strings (code-unit order: "B" < "a") < objects (by key).
MIXED_VALUE_ORDER = ["f", "t", "neg", "one", "half", "upper", "lower", "obj1", "obj2"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, MIXED_VALUE_ORDER),
        ({"start_at": True}, MIXED_VALUE_ORDER[1:]),
        ({"end_at": "a"}, MIXED_VALUE_ORDER[:7]),
        ({"start_at": 0, "end_at": "B"}, ["one", "half", "upper"]),
        ({"start_at": "a"}, ["lower", "obj1", "obj2"]),
        ({"equal_to": False}, ["f"]),
        ({"limit_to_last": 3}, ["lower", "obj1", "obj2"]),
    ],
    ids=repr,
)
def test_order_by_value_across_types(root, raw, index_mode, filters, expected):
    """`$value` orders false, true, numbers, strings, then objects (ties by key)."""
    store(root, raw, index_mode, {"mixed": MIXED_VALUES}, {"mixed": [".value"]})

    result = sdk_query(root.child("mixed"), "$value", filters).get()

    assert list(result) == expected
    assert_rest_order(raw, "mixed", rest_params("$value", filters), expected, MIXED_VALUES)


RANKED = {
    "a": {"rank": 2}, "b": {"other": 1}, "c": {"rank": "x"}, "d": {"rank": True},
    "e": {"rank": {"deep": 1}}, "f": {"rank": False}, "g": "a leaf has no children",
    "h": {"rank": -1.5},
}
# Missing (null) first, by key; then false, true, numbers, strings, objects.
RANK_ORDER = ["b", "g", "f", "d", "h", "a", "c", "e"]


def test_order_by_child_puts_missing_children_first(root, raw, index_mode):
    """Children without the ordered child (or that are leaves) sort first, by key."""
    store(root, raw, index_mode, {"ranked": RANKED}, {"ranked": ["rank"]})

    assert list(root.child("ranked").order_by_child("rank").get()) == RANK_ORDER
    assert list(root.child("ranked").order_by_child("rank").limit_to_first(3).get()) == RANK_ORDER[:3]
    assert_rest_order(raw, "ranked", rest_params("rank"), RANK_ORDER, RANKED)
    assert_rest_order(raw, "ranked", rest_params("rank", {"start_at": False, "end_at": 2}),
                      ["f", "d", "h", "a"], RANKED)


KEYED = {key: {"k": key} for key in
         ["a", "B", "100", "-7", "3", "20", "2147483647", "2147483648", "x-1", "_"]}
# 32-bit integer keys first, numerically; then the rest as strings ("2147483648" is too big
# to be an integer key).
KEY_ORDER = ["-7", "3", "20", "100", "2147483647", "2147483648", "B", "_", "a", "x-1"]


def test_order_by_key_puts_integer_keys_first(root, raw):
    """`$key` sorts 32-bit integer keys numerically before all other keys.

    The REST body must be in that order. The SDK re-sorts keys as plain strings (it is not
    integer-aware), so only the set of children it returns is compared.
    """
    root.child("keyed").set(KEYED)

    assert_rest_order(raw, "keyed", rest_params("$key"), KEY_ORDER, KEYED)
    assert_rest_order(raw, "keyed", rest_params("$key", {"limit_to_first": 4}), KEY_ORDER[:4])
    assert_rest_order(raw, "keyed", rest_params("$key", {"start_at": "20", "end_at": "B"}),
                      KEY_ORDER[2:7])
    first_four = root.child("keyed").order_by_key().limit_to_first(4).get()
    assert sorted(first_four) == sorted(KEY_ORDER[:4])


def test_order_by_child_path_with_a_space(root, raw, index_mode):
    """A child path containing a space works from the SDK (`%20`) and from a form-encoded
    query (`+`), as firebase-tools sends it."""
    people = {"p1": {"full name": "Zoe"}, "p2": {"full name": "Ada"}, "p3": {"full name": "Max"}}
    store(root, raw, index_mode, {"people": people}, {"people": ["full name"]})

    assert list(root.child("people").order_by_child("full name").get()) == ["p2", "p3", "p1"]
    # requests form-encodes the parameters, so the space travels as "+".
    assert_rest_order(raw, "people", rest_params("full name", {"limit_to_last": 2}), ["p3", "p1"])


PRIORITIZED = {
    "a": {".value": 1, ".priority": 2},
    "b": {"x": 1, ".priority": "z"},
    "c": 3,
    "d": {".value": 4, ".priority": 1},
    "e": {".value": 5, ".priority": 1},
}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["c", "d", "e", "a", "b"]),
        ({"startAt": '1,"e"'}, ["e", "a", "b"]),
        ({"endAt": "2"}, ["c", "d", "e", "a"]),
        ({"startAt": '"a"'}, ["b"]),
        ({"limitToLast": "2"}, ["a", "b"]),
    ],
    ids=repr,
)
def test_order_by_priority_over_rest(raw, params, expected):
    """`$priority`: no priority first, then numbers, then strings; ties by key."""
    response = raw.request("PUT", "prioritized", json=PRIORITIZED)
    assert response.status_code == 200, response.text

    assert_rest_order(raw, "prioritized", {"orderBy": '"$priority"', **params}, expected)


# --------------------------------------------------------------------------------------
# Tie-break keys and exclusive bounds (REST only: the Python SDK cannot send them)
# --------------------------------------------------------------------------------------

TIES = {
    "items": {
        "a": {"score": 3}, "b": {"score": 3}, "c": {"score": 3},
        "d": {"score": 1}, "e": {"score": 5}, "f": {"name": "no score"},
    },
    "values": {"x": 1, "y": 1, "z": 2, "p": "m", "q": "m", "r": "n"},
}
TIE_INDEXES = {"items": ["score"], "values": [".value"]}
# items by score: f (null), d (1), a b c (3), e (5).  values: x y (1), z (2), p q ("m"), r.


@pytest.mark.parametrize(
    ("location", "params", "expected"),
    [
        ("items", {"orderBy": '"score"'}, ["f", "d", "a", "b", "c", "e"]),
        ("items", {"orderBy": '"score"', "startAt": '3,"b"'}, ["b", "c", "e"]),
        ("items", {"orderBy": '"score"', "startAt": '3,"bb"'}, ["c", "e"]),
        ("items", {"orderBy": '"score"', "endAt": '3,"b"'}, ["f", "d", "a", "b"]),
        ("items", {"orderBy": '"score"', "startAt": '3,"b"', "endAt": '3,"c"'}, ["b", "c"]),
        ("items", {"orderBy": '"score"', "startAt": '3,"b"', "limitToFirst": "1"}, ["b"]),
        ("items", {"orderBy": '"score"', "endAt": '3,"b"', "limitToLast": "2"}, ["a", "b"]),
        ("items", {"orderBy": '"score"', "startAt": 'null,"g"'}, ["d", "a", "b", "c", "e"]),
        ("items", {"orderBy": '"score"', "startAfter": '3,"b"'}, ["c", "e"]),
        ("items", {"orderBy": '"score"', "endBefore": '3,"b"'}, ["f", "d", "a"]),
        ("items", {"orderBy": '"score"', "startAfter": "3"}, ["e"]),
        ("items", {"orderBy": '"score"', "endBefore": "3"}, ["f", "d"]),
        ("items", {"orderBy": '"score"', "startAfter": "0"}, ["d", "a", "b", "c", "e"]),
        ("items", {"orderBy": '"score"', "startAfter": "1", "endBefore": "5"}, ["a", "b", "c"]),
        ("items", {"orderBy": '"score"', "startAfter": '3,"a"', "endBefore": '3,"c"'}, ["b"]),
        ("items", {"orderBy": '"score"', "startAfter": "1", "limitToFirst": "2"}, ["a", "b"]),
        ("items", {"orderBy": '"score"', "endBefore": "5", "limitToLast": "2"}, ["b", "c"]),
        ("items", {"orderBy": '"score"', "equalTo": "3", "limitToLast": "2"}, ["b", "c"]),
        ("items", {"orderBy": '"$key"', "startAfter": '"b"', "endBefore": '"e"'}, ["c", "d"]),
        ("items", {"orderBy": '"$key"', "endBefore": '"b"'}, ["a"]),
        ("items", {"orderBy": '"$key"', "startAfter": '"a"', "limitToFirst": "2"}, ["b", "c"]),
        ("values", {"orderBy": '"$value"'}, ["x", "y", "z", "p", "q", "r"]),
        ("values", {"orderBy": '"$value"', "startAt": '1,"y"'}, ["y", "z", "p", "q", "r"]),
        ("values", {"orderBy": '"$value"', "endBefore": '1,"y"'}, ["x"]),
        ("values", {"orderBy": '"$value"', "startAfter": '1,"x"', "endBefore": "2"}, ["y"]),
        ("values", {"orderBy": '"$value"', "startAfter": "2"}, ["p", "q", "r"]),
        ("values", {"orderBy": '"$value"', "startAt": '"m","q"'}, ["q", "r"]),
        ("values", {"orderBy": '"$value"', "endAt": '"m","p"'}, ["x", "y", "z", "p"]),
        ("values", {"orderBy": '"$value"', "startAfter": '"m"'}, ["r"]),
        ("values", {"orderBy": '"$value"', "equalTo": '"m"'}, ["p", "q"]),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else str(value),
)
def test_tie_break_keys_and_exclusive_bounds(root, raw, index_mode, location, params, expected):
    """`<value>,"<key>"` bounds split ties by key; `startAfter` / `endBefore` exclude the
    bound (all children at a key-less bound's value); limits apply after the range."""
    store(root, raw, index_mode, TIES, TIE_INDEXES)

    assert_rest_order(raw, location, params, expected, TIES[location])


# --------------------------------------------------------------------------------------
# Malformed queries
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"orderBy": "height"}, "orderBy must be a valid JSON encoded path"),
        ({"orderBy": "$key"}, "orderBy must be a valid JSON encoded path"),
        ({"orderBy": "height", "limitToFirst": "1"}, "orderBy must be a valid JSON encoded path"),
        ({"limitToFirst": "2"}, "orderBy must be defined when other query parameters are defined"),
        ({"startAt": "1"}, "orderBy must be defined when other query parameters are defined"),
        ({"equalTo": '"x"'}, "orderBy must be defined when other query parameters are defined"),
        ({"endAt": "3", "limitToLast": "1"},
         "orderBy must be defined when other query parameters are defined"),
        ({"orderBy": '"height"', "startAt": '{"a":1}'},
         "Constraint index field must be a JSON primitive"),
        ({"orderBy": '"height"', "endAt": "[1,2]"},
         "Constraint index field must be a JSON primitive"),
        ({"orderBy": '"$value"', "equalTo": "abc"},
         "Constraint index field must be a JSON primitive"),
        ({"orderBy": '"$key"', "startAt": "0"},
         "Provided key index type is invalid, must be string"),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else str(value),
)
def test_malformed_query_gives_firebase_error(root, raw, params, message):
    """A malformed query is a 400 whose `error` is Firebase's exact message."""
    root.child("dinodb").set(DINOSAURS)

    response = raw.request("GET", "dinodb/dinosaurs", params=params)

    assert response.status_code == 400, (response.status_code, response.text)
    assert response.json() == {"error": message}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda ref: ref.order_by_child("height").start_at({"a": 1}),
         "Constraint index field must be a JSON primitive"),
        (lambda ref: ref.order_by_value().equal_to([1, 2]),
         "Constraint index field must be a JSON primitive"),
        (lambda ref: ref.order_by_key().start_at(0),
         "Provided key index type is invalid, must be string"),
    ],
    ids=["object-bound", "array-bound", "number-bound-for-key"],
)
def test_sdk_raises_on_malformed_query(root, build, message):
    """The SDK surfaces the server's 400 as `InvalidArgumentError` with its message."""
    root.child("dinodb").set(DINOSAURS)

    with pytest.raises(exceptions.InvalidArgumentError) as error_info:
        build(root.child("dinodb/dinosaurs")).get()

    assert str(error_info.value) == message
    assert error_info.value.http_response.status_code == 400


def test_emulator_mode_needs_no_index(root, raw):
    """In `--emulator` mode a non-admin child query needs no `.indexOn` (like Firebase's
    emulator), even when the uploaded rules declare other indexes."""
    root.child("dinodb").set(DINOSAURS)
    upload_rules(raw, rules_declaring({"dinodb/dinosaurs": ["length"]}, **{".read": True}))

    # No Authorization header: an unauthenticated reader, allowed by `.read: true`.
    response = raw.request("GET", "dinodb/dinosaurs", headers={"Authorization": None},
                           params={"orderBy": '"height"', "limitToFirst": "3"})

    assert body_keys(response) == HEIGHT_SORTED[:3]


# --------------------------------------------------------------------------------------
# Shallow key paging (firebase-tools)
# --------------------------------------------------------------------------------------

PAGE_SIZE = 64


def utf16_order(key: str) -> tuple:
    """Firebase's key order: 32-bit integer keys numerically, then UTF-16 code-unit order."""
    try:
        number = int(key)
    except ValueError:
        number = None
    if number is not None and str(number) == key and -2**31 <= number < 2**31:
        return (0, number, b"")
    return (1, 0, key.encode("utf-16-be"))


def paging_keys() -> list[str]:
    """About 290 keys of many shapes, none of which could make a page render as an array."""
    alphabet = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
    generator = random.Random(20240611)
    push_like = {"".join(generator.choice(alphabet) for _ in range(20)) for _ in range(120)}
    words = [f"item-{i:03d}" for i in range(100)]
    cased = [f"{prefix}{i}" for i in range(30) for prefix in ("Key", "key")]
    odd = ["café", "日本", "ünïcode", "fire-🔥", "fire-a", "_under", "-dash",
           "7", "42", "1000", "-5", "2147483648"]
    return sorted(push_like | set(words) | set(cased) | set(odd), key=utf16_order)


def test_shallow_paging_like_firebase_tools(root, raw):
    """`shallow=true&limitToFirst=N`, then `startAfter="<last key>"` until a page is empty,
    sees every key exactly once, in key order, with every child shown as `true`."""
    keys = paging_keys()
    assert len(keys) > 250
    root.child("big").set({key: {"n": index, "deep": {"i": index}} for index, key in enumerate(keys)})

    seen: list[str] = []
    requests_made = 0
    last_key = None
    while True:
        params = {"shallow": "true", "limitToFirst": str(PAGE_SIZE)}
        if last_key is not None:
            params["startAfter"] = json.dumps(last_key, ensure_ascii=False)
        response = raw.request("GET", "big", params=params)
        requests_made += 1
        assert requests_made <= math.ceil(len(keys) / PAGE_SIZE) + 1, "paging does not end"
        page = body_keys(response)
        if not page:  # null (or {}) after the last key: firebase-tools stops
            break
        assert len(page) <= PAGE_SIZE
        assert page == sorted(page, key=utf16_order), f"page not in key order: {page}"
        assert response.json() == {key: True for key in page}
        seen.extend(page)
        last_key = page[-1]

    assert seen == keys
    assert requests_made == math.ceil(len(keys) / PAGE_SIZE) + 1


def test_shallow_first_key_like_the_emulator_export(root, raw):
    """`GET /.json?shallow=true&limitToFirst=1` (firebase-tools' "any data?" probe) gives
    the first key only."""
    root.set({"zeta": {"a": 1}, "alpha": {"b": 2}, "mid": {"c": 3}})

    response = raw.request("GET", "", params={"shallow": "true", "limitToFirst": "1"})

    assert body_keys(response) == ["alpha"]
    assert response.json() == {"alpha": True}


# --------------------------------------------------------------------------------------
# Writes after queries
# --------------------------------------------------------------------------------------


def test_value_query_follows_writes(dino, raw):
    """A top-2 `$value` query reflects sets, deletes, new children and type changes."""
    scores = dino.child("scores")

    def top_two():
        return list(scores.order_by_value().limit_to_last(2).get())

    assert top_two() == [LINH, PTERO]
    scores.child(STEG).set(100)
    assert top_two() == [PTERO, STEG]
    scores.update({PTERO: None, LAMB: 95})
    assert top_two() == [LAMB, STEG]
    scores.child("compsognathus").set(99)
    assert top_two() == ["compsognathus", STEG]
    assert_rest_order(raw, "dinodb/scores", rest_params("$value", {"limit_to_last": 2}),
                      ["compsognathus", STEG])
    scores.child(TRIC).set("champion")  # strings sort after every number
    assert list(scores.order_by_value().limit_to_last(1).get()) == [TRIC]
    assert list(scores.order_by_value().limit_to_first(2).get()) == [BRUH, LINH]


def test_deep_change_moves_a_child_across_the_limit(dino, raw):
    """Changing `ratings/pos` deep inside a child moves it in and out of a limited window."""
    dinosaurs = dino.child("dinosaurs")

    def first_three():
        return list(dinosaurs.order_by_child("ratings/pos").limit_to_first(3).get())

    assert first_three() == [BRUH, LAMB, LINH]
    dinosaurs.child(f"{BRUH}/ratings/pos").set(7)  # out of the window, past the boundary
    assert first_three() == [LAMB, LINH, PTERO]
    assert list(dinosaurs.order_by_child("ratings/pos").limit_to_last(1).get()) == [BRUH]
    dinosaurs.update({f"{STEG}/ratings/pos": 0})  # multi-path update into the window
    assert first_three() == [STEG, LAMB, LINH]
    assert_rest_order(raw, "dinodb/dinosaurs", rest_params("ratings/pos", {"limit_to_first": 3}),
                      [STEG, LAMB, LINH])
    dinosaurs.child(f"{LAMB}/ratings").set(5)  # `ratings` is now a leaf: `ratings/pos` is null
    assert first_three() == [LAMB, STEG, LINH]
    assert_rest_order(raw, "dinodb/dinosaurs",
                      rest_params("ratings/pos", {"start_at": 3, "end_at": 7}),
                      [LINH, PTERO, TRIC, BRUH])


def test_child_query_follows_added_removed_and_retyped_children(dino, raw):
    """New children appear in place; removed ones vanish; a missing or string `height`
    moves a child to the front or the back."""
    dinosaurs = dino.child("dinosaurs")

    def by_height(**filters):
        return list(sdk_query(dinosaurs, "height", filters).get())

    dinosaurs.child("compsognathus").set({"height": 0.7, "ratings": {"pos": 7}})
    assert by_height(start_at=0.6, end_at=2.1) == [LINH, PTERO, "compsognathus", LAMB]
    dinosaurs.child(LINH).delete()
    assert by_height(equal_to=0.6) == [PTERO]
    dinosaurs.child(f"{TRIC}/height").delete()
    assert by_height(limit_to_first=1) == [TRIC]
    dinosaurs.child(f"{TRIC}/height").set("tall")
    assert by_height() == [PTERO, "compsognathus", LAMB, STEG, BRUH, TRIC]
    assert_rest_order(raw, "dinodb/dinosaurs", rest_params("height", {"limit_to_last": 2}),
                      [BRUH, TRIC])


def test_query_after_replacing_and_deleting_the_location(dino, raw):
    """After `set` replaces the queried location the query sees only the new children;
    after `delete` it returns None."""
    dinosaurs = dino.child("dinosaurs")
    dinosaurs.set({"x": {"height": 2}, "y": {"height": 1}, "z": {"height": 3}})

    assert list(dinosaurs.order_by_child("height").get()) == ["y", "x", "z"]
    assert_rest_order(raw, "dinodb/dinosaurs", rest_params("height", {"limit_to_first": 2}),
                      ["y", "x"])
    dinosaurs.delete()
    assert dinosaurs.order_by_child("height").limit_to_first(2).get() is None


# --------------------------------------------------------------------------------------
# Index enforcement without --emulator
# --------------------------------------------------------------------------------------

PRODUCTION_NAMESPACE = "queries-compat"
PRODUCTION_RULES = rules_declaring(
    {**DINO_INDEXES, "users/$uid/items": ["rank"]}, **{".read": True})
USER_ITEMS = {"i1": {"rank": 3, "title": "c"}, "i2": {"rank": 1, "title": "a"},
              "i3": {"rank": 2, "title": "b"}}


class Production:
    """A `hearth serve` without `--emulator`, with `PRODUCTION_RULES` and an admin token."""

    def __init__(self, server, admin_token: str) -> None:
        self.server = server
        self.admin_token = admin_token
        self.session = requests.Session()
        self.session.trust_env = False

    def request(self, method: str, path: str, *, admin: bool = False,
                params: dict | None = None, **kwargs) -> requests.Response:
        """`method path.json?ns=...` anonymously, or with the admin token if `admin`."""
        params = {"ns": PRODUCTION_NAMESPACE, **(params or {})}
        headers = {"Authorization": f"Bearer {self.admin_token}"} if admin else {}
        return self.session.request(method, f"{self.server.base_url}/{path.strip('/')}.json",
                                    params=params, headers=headers,
                                    timeout=HTTP_TIMEOUT_SECONDS, **kwargs)

    def write(self, method: str, path: str, value) -> None:
        """An admin write that must succeed."""
        response = self.request(method, path, admin=True, json=value)
        assert response.status_code == 200, (response.status_code, response.text)

    def keys(self, path: str, params: dict, *, admin: bool = False) -> list[str] | None:
        """The body keys, in order, of a query that must succeed."""
        return body_keys(self.request("GET", path, admin=admin, params=params))

    def assert_index_error(self, path: str, params: dict, index_on: str) -> None:
        """An anonymous query at `path` is refused for want of `.indexOn: index_on`."""
        response = self.request("GET", path, params=params)
        assert response.status_code == 400, (path, params, response.status_code, response.text)
        assert response.json() == {"error": error_message(index_on, f"/{path}")}

    @contextmanager
    def sdk_root(self, **options) -> Iterator[db.Reference]:
        """A firebase-admin root reference to this server that authenticates with the admin
        token (the SDK's emulator credential normally sends `owner`, which only `--emulator`
        accepts). `options` are extra app options, e.g. `databaseAuthVariableOverride`."""
        token = self.admin_token

        class AdminTokenCredentials(_utils.EmulatorAdminCredentials):
            def __init__(self) -> None:
                super().__init__()
                self.token = token

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_utils, "EmulatorAdminCredentials", AdminTokenCredentials)
            for name in ("NO_PROXY", "no_proxy"):
                existing = os.environ.get(name)
                patch.setenv(name, f"{existing},{HOST}" if existing else HOST)
            app = firebase_admin.initialize_app(
                credential=EmulatorOnlyCredential(),
                options={"databaseURL": self.server.database_url(PRODUCTION_NAMESPACE),
                         "httpTimeout": HTTP_TIMEOUT_SECONDS, **options},
                name=f"hearth-queries-{uuid.uuid4().hex[:8]}",
            )
            try:
                yield db.reference("/", app=app)
            finally:
                firebase_admin.delete_app(app)

    def close(self) -> None:
        self.session.close()


@pytest.fixture
def production(hearth_launcher, tmp_path) -> Iterator[Production]:
    """A production-mode server whose `--rules` file declares the dinosaur indexes and one
    under a `$uid` wildcard, seeded with the dinosaurs and alice's items."""
    rules_path = tmp_path / "rules.json"
    rules_path.write_text(json.dumps(PRODUCTION_RULES, indent=2), encoding="utf-8")
    data_dir, log_dir = tmp_path / "data", tmp_path / "logs"
    data_dir.mkdir()
    log_dir.mkdir()
    admin_token = secrets.token_hex(24)
    server = hearth_launcher(
        data_dir, log_dir, emulator=False, log_name="hearth-queries",
        extra_args=["--rules", str(rules_path), f"--admin-token={admin_token}"],
    )
    instance = Production(server, admin_token)
    try:
        instance.write("PUT", "dinodb", DINOSAURS)
        instance.write("PUT", "users/alice/items", USER_ITEMS)
        yield instance
    finally:
        instance.close()


def test_declared_indexes_serve_anonymous_queries(production):
    """Child, nested-child and `$value` queries on declared indexes, `$key` queries and
    shallow paging (which need no index) work for an unauthenticated reader."""
    assert production.keys("dinodb/dinosaurs", {"orderBy": '"height"', "limitToFirst": "2"}) \
        == HEIGHT_SORTED[:2]
    assert production.keys("dinodb/dinosaurs", {"orderBy": '"ratings/pos"', "startAt": "4"}) \
        == [PTERO, STEG, TRIC]
    assert production.keys("dinodb/scores", {"orderBy": '"$value"', "limitToLast": "2"}) \
        == [LINH, PTERO]
    assert production.keys("dinodb/dinosaurs", {"orderBy": '"$key"', "startAt": '"s"'}) \
        == [STEG, TRIC]
    assert production.keys("dinodb/dinosaurs", {"shallow": "true", "limitToFirst": "2"}) \
        == [BRUH, LAMB]
    # Declared under `users/$uid/items`.
    assert production.keys("users/alice/items", {"orderBy": '"rank"'}) == ["i2", "i3", "i1"]


@pytest.mark.parametrize(
    ("path", "params", "index_on"),
    [
        ("dinodb/dinosaurs", {"orderBy": '"length"'}, "length"),
        ("dinodb/dinosaurs", {"orderBy": '"length"', "limitToFirst": "1"}, "length"),
        ("dinodb/dinosaurs", {"orderBy": '"$value"'}, ".value"),
        ("dinodb/dinosaurs", {"orderBy": '"ratings"'}, "ratings"),
        ("dinodb/scores", {"orderBy": '"height"', "startAt": "1"}, "height"),
        ("dinodb", {"orderBy": '"height"'}, "height"),
        ("users/alice/items", {"orderBy": '"title"'}, "title"),
        ("users/alice", {"orderBy": '"rank"'}, "rank"),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else str(value),
)
def test_undeclared_index_is_refused(production, path, params, index_on):
    """A non-admin query on a child or `$value` without a matching `.indexOn` at that very
    location is a 400 with Firebase's `Index not defined` message."""
    production.assert_index_error(path, params, index_on)


def test_admin_queries_need_no_index(production):
    """The admin credential queries undeclared children and values (by scanning)."""
    assert production.keys("dinodb/dinosaurs", {"orderBy": '"length"', "limitToFirst": "3"},
                           admin=True) == [PTERO, LINH, TRIC]
    assert production.keys("dinodb/dinosaurs", {"orderBy": '"order"', "equalTo": '"ornithischia"'},
                           admin=True) == [LAMB, STEG, TRIC]
    assert production.keys("users/alice/items", {"orderBy": '"title"', "limitToLast": "1"},
                           admin=True) == ["i1"]


def test_sdk_query_errors_and_successes_without_emulator(production):
    """Through firebase-admin: with `databaseAuthVariableOverride=None` (rules apply, as an
    unauthenticated user) an indexed query works and an unindexed one raises
    `InvalidArgumentError` with Firebase's message; as admin both work."""
    with production.sdk_root(databaseAuthVariableOverride=None) as anonymous:
        dinosaurs = anonymous.child("dinodb/dinosaurs")
        assert list(dinosaurs.order_by_child("height").limit_to_last(2).get()) == HEIGHT_SORTED[-2:]
        with pytest.raises(exceptions.InvalidArgumentError) as error_info:
            dinosaurs.order_by_child("length").get()
        assert str(error_info.value) == error_message("length", "/dinodb/dinosaurs")
        with pytest.raises(exceptions.InvalidArgumentError) as error_info:
            dinosaurs.order_by_value().limit_to_first(1).get()
        assert str(error_info.value) == error_message(".value", "/dinodb/dinosaurs")

    with production.sdk_root() as admin:
        result = admin.child("dinodb/dinosaurs").order_by_child("length").limit_to_first(3).get()
        assert list(result) == [PTERO, LINH, TRIC]


def test_uploaded_rules_replace_the_declared_indexes(production):
    """`PUT /.settings/rules.json` with a new `.indexOn` makes that query work for
    non-admins and the indexes it no longer declares fail, on data written before."""
    production.assert_index_error("dinodb/dinosaurs", {"orderBy": '"length"'}, "length")

    new_rules = rules_declaring({"dinodb/dinosaurs": ["length"]}, **{".read": True})
    response = production.request("PUT", ".settings/rules", admin=True, data=json.dumps(new_rules))
    assert response.status_code == 200, (response.status_code, response.text)

    assert production.keys("dinodb/dinosaurs", {"orderBy": '"length"'}) \
        == [PTERO, LINH, TRIC, STEG, LAMB, BRUH]
    production.assert_index_error("dinodb/dinosaurs", {"orderBy": '"height"'}, "height")


def test_declared_indexes_follow_writes(production):
    """Anonymous indexed queries see admin writes: changed values, deep changes, deletes
    and a new `$uid` under the wildcard index."""
    production.write("PUT", f"dinodb/scores/{STEG}", 100)
    assert production.keys("dinodb/scores", {"orderBy": '"$value"', "limitToLast": "2"}) \
        == [PTERO, STEG]

    production.write("PATCH", "dinodb/dinosaurs", {f"{BRUH}/ratings/pos": 9, f"{TRIC}/height": None})
    assert production.keys("dinodb/dinosaurs", {"orderBy": '"ratings/pos"', "limitToFirst": "1"}) \
        == [LAMB]
    assert production.keys("dinodb/dinosaurs", {"orderBy": '"ratings/pos"', "limitToLast": "1"}) \
        == [BRUH]
    assert production.keys("dinodb/dinosaurs", {"orderBy": '"height"', "limitToFirst": "2"}) \
        == [TRIC, LINH]

    production.write("PUT", "users/bob/items", {"b1": {"rank": 9}, "b2": {"rank": -1}})
    assert production.keys("users/bob/items", {"orderBy": '"rank"'}) == ["b2", "b1"]
    production.assert_index_error("users/bob/items", {"orderBy": '"title"'}, "title")
