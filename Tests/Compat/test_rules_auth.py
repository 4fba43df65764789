"""Security rules and authentication, tested from the outside.

Covers `hearth serve --rules`, the admin credential (`--admin-token`, `--admin-token-file`
and the generated `<data-dir>/admin-token`), JWT verification (HS256 secrets, RS256 and
ES256 PEM public keys, JWKS files, legacy Firebase custom tokens, expiry with leeway,
issuer and audience checks), `auth_variable_override`, emulator mode, the
`/.settings/rules.json` endpoint, and the `hearth token` / `hearth rules check` subcommands.

Every test starts servers of its own through `hearth_launcher`, because the behaviour under
test is chosen by command-line flags. Unless a test is about emulator mode the servers run
without `--emulator`, so nothing is allowed unless a rule grants it. Tokens are minted here
with PyJWT; RSA and P-256 keys are generated at test time and written as PEM (or JWKS)
files next to the server's data directory.

A rules denial must look exactly like Firebase's (401 with `{"error": "Permission denied"}`)
and must leave the data untouched, which the tests check with an admin read. A credential
the server cannot accept (bad signature, expired, wrong issuer, ...) must give a 401 with a
non-empty `error` message; its wording is not checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import re
import secrets
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from compat_helpers import HOST, HTTP_TIMEOUT_SECONDS, assert_push_id, free_port

NAMESPACE = "rules-compat"
OWNER = "owner"  # the emulator's admin bearer token
PROJECT = "demo-hearth"
PERMISSION_DENIED = {"error": "Permission denied"}
# The three places a credential may travel: `Authorization: Bearer`, `?auth=`, `?access_token=`.
TRANSPORTS = ("header", "auth", "access_token")
CLI_TIMEOUT_SECONDS = 60
# Sentinel for `launch(admin_token=...)`: pass a fresh random `--admin-token`.
RANDOM_ADMIN_TOKEN = object()
# Sentinel for `Hearth.upload_rules(token=...)`: use the server's admin credential.
AS_ADMIN = object()

# --------------------------------------------------------------------------------------
# Rules documents
# --------------------------------------------------------------------------------------

WEBHOOK_RULES = """\
{
  // Webhooks post without credentials; only signed-in users may read what they left.
  "rules": {
    /* Reads need a user... */
    ".read": "auth != null",
    /* ...and writes must come from an anonymous caller. */
    ".write": "auth == null"
  }
}
"""

USER_RULES = {
    "rules": {
        "users": {
            "$uid": {
                ".read": "auth != null && auth.uid == $uid",
                ".write": "auth != null && auth.uid == $uid",
                ".validate": "newData.hasChildren(['name'])",
                "name": {".validate": "newData.isString() && newData.val().length < 20"},
                "$other": {".validate": False},
            }
        }
    }
}

USER_AND_PUBLIC_RULES = {"rules": {**USER_RULES["rules"], "public": {".read": True}}}

# `whoami/<uid>` is readable only by the user `<uid>`: a read there proves who the caller is.
WHOAMI_RULES = {"rules": {"whoami": {"$uid": {".read": "auth != null && auth.uid == $uid"}}}}

OPEN_RULES_TEXT = """\
{
  // The rules in force before an upload that must not replace them.
  "rules": {
    "open": { ".read": true, ".write": true }
  }
}
"""

UPLOADED_RULES_TEXT = """\
// Rules uploaded through the REST API; comments and layout are kept verbatim (« naïve »).
{
  "rules": {
    /* Posts: anyone reads, signed-in users write. */
    "posts": {
      ".read": true,
      ".write": "auth != null"   // a trailing comment
    },
    "notes": { ".read": "auth != null && auth.uid == 'alice'" }
  }
}
"""

UPLOADED_RULES = {
    "rules": {
        "posts": {".read": True, ".write": "auth != null"},
        "notes": {".read": "auth != null && auth.uid == 'alice'"},
    }
}

# Invalid documents: (text, a marker on the line the error must be reported at).
BAD_RULES = {
    "json-syntax": (
        """\
{
  // a comment on line 2
  "rules": {
    ".read": tru,
    ".write": false
  }
}
""",
        "tru,",
    ),
    "expression-syntax": (
        """\
{
  "rules": {
    "posts": {
      ".read": true,
      ".write": "auth.uid == == 'alice'"
    }
  }
}
""",
        "== ==",
    ),
    "unknown-rule-key": (
        """\
{
  "rules": {
    /* a block comment
       spanning two lines */
    ".raed": true
  }
}
""",
        ".raed",
    ),
}


def line_of(text: str, marker: str) -> int:
    """The 1-based line number of the first occurrence of `marker` in `text`."""
    return text[: text.index(marker)].count("\n") + 1


# --------------------------------------------------------------------------------------
# Tokens and keys
# --------------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    """Base64url without padding, as JWTs use it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(value: Any) -> str:
    """A JWT header or payload segment for `value`."""
    return _b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def claims(subject: str | None = None, /, *, lifetime: int = 3600, **extra: Any) -> dict:
    """A JWT payload: `sub` = `subject` (if given), `iat` = now, `exp` = now + `lifetime`,
    then `extra` (which may override any of them, or add a `uid` claim)."""
    now = int(time.time())
    payload: dict[str, Any] = {"iat": now, "exp": now + lifetime}
    if subject is not None:
        payload["sub"] = subject
    payload.update(extra)
    return payload


def hs256_token(secret: str, payload: dict, **headers: Any) -> str:
    """`payload` signed with HS256 by PyJWT; `headers` go into the JOSE header."""
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers or None)


def hand_signed_token(key: bytes, payload: dict, alg: str = "HS256") -> str:
    """A JWT whose header says `alg` and whose signature is HMAC-SHA256 keyed with `key`.

    PyJWT refuses to use PEM text as an HMAC secret, so the key-confusion attack (an HS256
    token keyed with a server's public key file) is signed by hand.
    """
    signing_input = f"{_segment({'alg': alg, 'typ': 'JWT'})}.{_segment(payload)}"
    signature = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def unsigned_token(payload: dict) -> str:
    """An `alg: none` JWT with an empty signature, as the Firebase SDKs build mock tokens."""
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(payload)}."


def emulator_mock_token(uid: str, *, iat: int | None = None, **extra: Any) -> str:
    """A mock user token laid out like the JS SDK's `createMockUserToken`.

    With `iat=0` it is exactly the SDK's default (issued in 1970, long expired), which the
    Firebase emulators accept anyway.
    """
    issued = int(time.time()) if iat is None else iat
    payload = {
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "aud": PROJECT,
        "iat": issued,
        "exp": issued + 3600,
        "auth_time": issued,
        "sub": uid,
        "user_id": uid,
        "firebase": {"sign_in_provider": "custom", "identities": {}},
        **extra,
    }
    return unsigned_token(payload)


def public_pem(private_key) -> bytes:
    """The PEM (SubjectPublicKeyInfo) encoding of `private_key`'s public key."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_public_pem(path: Path, private_key) -> Path:
    """Writes `private_key`'s public key to `path` as PEM and returns the path."""
    path.write_bytes(public_pem(private_key))
    return path


@pytest.fixture(scope="module")
def rsa_key():
    """A 2048-bit RSA signing key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key():
    """A second RSA key that the servers never trust."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    """A P-256 (ES256) signing key."""
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class SharedSecret:
    """An HS256 secret and the file that holds it (with a trailing newline)."""

    value: str
    path: Path

    @property
    def flags(self) -> list[str]:
        """The `hearth serve` flags that trust this secret."""
        return ["--jwt-secret-file", str(self.path)]

    def token(self, subject: str | None = None, /, **extra: Any) -> str:
        """An HS256 token whose `sub` is `subject` (see `claims`)."""
        return hs256_token(self.value, claims(subject, **extra))

    def sign(self, payload: dict) -> str:
        """`payload`, exactly as given, signed with HS256."""
        return hs256_token(self.value, payload)


def write_secret(path: Path) -> SharedSecret:
    """A fresh random secret, written to `path` followed by a newline (which the server
    strips)."""
    value = secrets.token_hex(32)
    path.write_text(value + "\n")
    return SharedSecret(value, path)


@pytest.fixture
def secret(tmp_path) -> SharedSecret:
    """An HS256 secret file for this test."""
    return write_secret(tmp_path / "jwt-secret")


# --------------------------------------------------------------------------------------
# Servers and requests
# --------------------------------------------------------------------------------------


class Hearth:
    """One running `hearth serve`, a proxy-free REST session and its admin credential."""

    def __init__(self, server, admin_token: str | None, session: requests.Session) -> None:
        self.server = server
        self.admin_token = admin_token
        self.session = session

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    def url(self, path: str) -> str:
        """The `.json` URL of `path` (`""` is the root)."""
        return f"{self.server.base_url}/{path.strip('/')}.json"

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        via: str = "header",
        ns: str | None = NAMESPACE,
        params: dict | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Sends `method` to `path` in namespace `ns`, with `token` (if any) sent `via` the
        `Authorization` header or the `auth` / `access_token` query parameter."""
        params = dict(params or {})
        if ns is not None:
            params["ns"] = ns
        headers = dict(kwargs.pop("headers", None) or {})
        if token is not None:
            if via == "header":
                headers["Authorization"] = f"Bearer {token}"
            elif via in ("auth", "access_token"):
                params[via] = token
            else:
                raise ValueError(f"unknown credential transport {via!r}")
        kwargs.setdefault("timeout", HTTP_TIMEOUT_SECONDS)
        return self.session.request(method, self.url(path), params=params, headers=headers,
                                    **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request with the admin credential."""
        assert self.admin_token, "this server has no known admin credential"
        return self.request(method, path, token=self.admin_token, **kwargs)

    def admin_value(self, path: str, ns: str = NAMESPACE):
        """The value at `path` as the admin sees it."""
        response = self.admin("GET", path, ns=ns)
        assert_status(response, 200)
        return response.json()

    def seed(self, path: str, value, ns: str = NAMESPACE) -> None:
        """Writes `value` at `path` as the admin."""
        assert_status(self.admin("PUT", path, ns=ns, json=value), 200)

    def upload_rules(self, text: str, ns: str = NAMESPACE, *, dry_run: bool = False,
                     token: Any = AS_ADMIN) -> requests.Response:
        """`PUT /.settings/rules.json` with `text` as the body, sent with `token` (by default
        the admin credential; None sends no credential)."""
        if token is AS_ADMIN:
            token = self.admin_token
        params = {"dryRun": "true"} if dry_run else None
        return self.request("PUT", ".settings/rules", token=token, ns=ns, params=params,
                            data=text.encode("utf-8"))

    def rules_text(self, ns: str = NAMESPACE) -> str:
        """The stored rules document of `ns`, as text."""
        response = self.admin("GET", ".settings/rules", ns=ns)
        assert_status(response, 200)
        return response.content.decode("utf-8")

    def strict_rules(self, ns: str = NAMESPACE):
        """The rules document of `ns` from `?format=strict`, parsed."""
        response = self.admin("GET", ".settings/rules", ns=ns, params={"format": "strict"})
        assert_status(response, 200)
        return json.loads(response.content)

    def stop(self) -> None:
        """Stops the server gracefully (SIGTERM), as an operator would before a restart."""
        process = self.server.process
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def log_text(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        return self.server.stderr_path.read_text(errors="replace")


@pytest.fixture
def launch(hearth_launcher, tmp_path) -> Iterator[Callable[..., Hearth]]:
    """Starts a `hearth serve` for this test: ``launch(rules=..., emulator=...,
    admin_token=..., flags=[...], data_dir=...)``.

    * ``rules``: a dict (written as JSON) or a text, passed with ``--rules``; None for none.
    * ``admin_token``: by default a fresh random ``--admin-token``; None passes no admin flag
      (the server then generates ``<data-dir>/admin-token``, which becomes the admin token);
      a string is passed as ``--admin-token``.
    * ``data_dir``: reuse a directory to restart a server on the same data.
    """
    counter = itertools.count(1)
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    sessions: list[requests.Session] = []

    def start(*, rules: dict | str | None = None, emulator: bool = False,
              admin_token: Any = RANDOM_ADMIN_TOKEN, flags=(), data_dir: Path | None = None
              ) -> Hearth:
        number = next(counter)
        data_dir = data_dir or tmp_path / f"data-{number}"
        data_dir.mkdir(parents=True, exist_ok=True)
        # These tests are about rules and tokens in namespaces they name: anyone may create
        # one (namespace creation has tests of its own, in test_public_webhooks.py).
        args = ["--create-namespaces", *flags]
        if rules is not None:
            rules_path = tmp_path / f"rules-{number}.json"
            text = rules if isinstance(rules, str) else json.dumps(rules, indent=2)
            rules_path.write_text(text, encoding="utf-8")
            args += ["--rules", str(rules_path)]
        if admin_token is RANDOM_ADMIN_TOKEN:
            admin_token = secrets.token_urlsafe(24)
        if admin_token is not None:
            args += [f"--admin-token={admin_token}"]  # "=" form: a token may start with "-"
        server = hearth_launcher(data_dir, log_dir, emulator=emulator, extra_args=args,
                                 log_name=f"hearth-{number}")
        if admin_token is None:
            generated = data_dir / "admin-token"
            admin_token = generated.read_text().strip() if generated.is_file() else None
        session = requests.Session()
        session.trust_env = False
        sessions.append(session)
        return Hearth(server, admin_token, session)

    try:
        yield start
    finally:
        for session in sessions:
            session.close()


def run_cli(binary: Path, *args: str) -> subprocess.CompletedProcess:
    """Runs `hearth <args>` and returns its exit status and output."""
    return subprocess.run([str(binary), *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_SECONDS)


# --------------------------------------------------------------------------------------
# Assertions
# --------------------------------------------------------------------------------------


def _describe(response: requests.Response) -> str:
    return (f"{response.request.method} {response.url} -> {response.status_code}: "
            f"{response.text[:500]!r}")


def assert_status(response: requests.Response, status: int, why: str = "") -> None:
    """Asserts the HTTP status, showing the request and the body when it differs."""
    assert response.status_code == status, (
        f"{why + ': ' if why else ''}expected {status}, got {_describe(response)}"
    )


def assert_denied(response: requests.Response, why: str = "") -> None:
    """Asserts a Firebase rules denial: 401 with `{"error": "Permission denied"}`."""
    assert_status(response, 401, why)
    assert response.json() == PERMISSION_DENIED, f"{why}: {_describe(response)}"


def assert_credential_rejected(response: requests.Response, why: str = "") -> None:
    """Asserts a refused credential: 401 with a non-empty `error` message."""
    assert_status(response, 401, why)
    body = response.json()
    assert isinstance(body, dict), f"{why}: {_describe(response)}"
    error = body.get("error")
    assert isinstance(error, str) and error.strip(), f"{why}: {_describe(response)}"


def assert_accepted_as(hearth: Hearth, token: str, uid: str, why: str = "",
                       via: str = "header") -> None:
    """Asserts that `token` is accepted and identifies the caller as `uid` (needs
    `WHOAMI_RULES`): `whoami/<uid>` is readable with it, `whoami/<other>` is not."""
    label = why or f"token for {uid}"
    assert_status(hearth.request("GET", f"whoami/{uid}", token=token, via=via), 200, label)
    assert_denied(hearth.request("GET", f"whoami/not-{uid}", token=token, via=via), label)


# --------------------------------------------------------------------------------------
# Rules files, the admin credential and the default policy
# --------------------------------------------------------------------------------------


def test_webhook_rules_let_anonymous_callers_post_and_users_read(launch, secret):
    """The rules file (with comments) lets anonymous callers POST but not read, users read
    but not write; the generated admin token reads everything via every transport."""
    hearth = launch(rules=WEBHOOK_RULES, admin_token=None, flags=secret.flags)

    token_path = hearth.data_dir / "admin-token"
    assert token_path.is_file(), "no admin token was generated in the data directory"
    assert stat.S_IMODE(os.stat(token_path).st_mode) == 0o600
    assert hearth.admin_token, "the generated admin token file is empty"

    blessing = {"from": "webhook", "text": "may your builds be green"}
    posted = hearth.request("POST", "blessing", json=blessing)
    assert_status(posted, 200, "anonymous POST")
    assert set(posted.json()) == {"name"}
    name = posted.json()["name"]
    assert_push_id(name)

    assert_denied(hearth.request("GET", "blessing"), "anonymous read")
    assert_denied(hearth.request("GET", ""), "anonymous read of the root")

    reader = secret.token("reader")
    for via in TRANSPORTS:
        response = hearth.request("GET", "blessing", token=reader, via=via)
        assert_status(response, 200, f"user read via {via}")
        assert response.json() == {name: blessing}

    assert_denied(hearth.request("POST", "blessing", token=reader, json={"text": "signed"}),
                  "user POST (auth == null fails)")
    assert_denied(hearth.request("PUT", f"blessing/{name}", token=reader, json="overwritten"),
                  "user PUT")

    for via in TRANSPORTS:
        response = hearth.request("GET", "", token=hearth.admin_token, via=via)
        assert_status(response, 200, f"admin read via {via}")
        assert response.json() == {"blessing": {name: blessing}}
    response = hearth.request("PUT", "admin-only", token=hearth.admin_token, via="auth",
                              json={"ok": True})
    assert_status(response, 200, "admin write (auth == null would deny a user)")
    assert hearth.admin_value("") == {"blessing": {name: blessing}, "admin-only": {"ok": True}}


def test_generated_admin_token_is_logged_and_reused_after_restart(launch):
    """Without admin flags the server creates `<data-dir>/admin-token` (mode 0600), logs
    its path, and keeps using the same token after a restart."""
    first = launch(admin_token=None)
    token_path = first.data_dir / "admin-token"
    token = first.admin_token
    assert token, "no admin token was generated"
    assert stat.S_IMODE(os.stat(token_path).st_mode) == 0o600
    first.seed("kept", {"by": "admin"})
    first.stop()
    log = first.log_text()
    assert str(token_path) in log or str(token_path.resolve()) in log, (
        f"the server did not log the admin token path {token_path}:\n{log[-3000:]}"
    )

    second = launch(admin_token=None, data_dir=first.data_dir)
    assert token_path.read_text().strip() == token, "the admin token changed on restart"
    assert stat.S_IMODE(os.stat(token_path).st_mode) == 0o600
    assert second.admin_value("kept") == {"by": "admin"}
    assert_denied(second.request("GET", "kept"), "anonymous read after restart")


def test_admin_token_file_flag_sets_the_admin_credential(launch, tmp_path):
    """`--admin-token-file` makes the file's token the admin; other bearer strings are
    refused, and `owner` is not special outside emulator mode."""
    token = secrets.token_urlsafe(24)
    token_file = tmp_path / "admin-token.txt"
    token_file.write_text(token)
    hearth = launch(admin_token=None, flags=["--admin-token-file", str(token_file)])

    for via in TRANSPORTS:
        response = hearth.request("PUT", f"via/{via}", token=token, via=via, json=via)
        assert_status(response, 200, f"admin write via {via}")
    response = hearth.request("GET", "via", token=token)
    assert_status(response, 200)
    assert response.json() == {transport: transport for transport in TRANSPORTS}

    for label, bogus in [("a wrong admin token", token + "x"), ("owner", OWNER)]:
        assert_credential_rejected(hearth.request("GET", "via", token=bogus), label)
        assert_credential_rejected(hearth.request("PUT", "via/x", token=bogus, json=1), label)
    assert hearth.request("GET", "via", token=token).json() == {t: t for t in TRANSPORTS}


def test_without_rules_or_emulator_only_the_admin_gets_in(launch):
    """No `--rules`, no uploaded rules and no `--emulator`: every non-admin read and write
    is denied, and the default rules document grants nothing."""
    hearth = launch()
    hearth.seed("existing", {"value": 1})

    attempts = [
        ("GET", "", {}),
        ("GET", "existing", {}),
        ("GET", "missing", {}),
        ("PUT", "existing", {"json": {"value": 2}}),
        ("PUT", "new", {"json": "x"}),
        ("POST", "list", {"json": {"a": 1}}),
        ("PATCH", "", {"json": {"existing/value": 3}}),
        ("DELETE", "existing", {}),
    ]
    for method, path, kwargs in attempts:
        assert_denied(hearth.request(method, path, **kwargs), f"anonymous {method} /{path}")

    assert hearth.admin_value("") == {"existing": {"value": 1}}
    assert_status(hearth.admin("PATCH", "", json={"existing/value": 4}), 200)
    assert hearth.admin_value("existing") == {"value": 4}

    document = hearth.strict_rules()
    assert isinstance(document, dict) and isinstance(document.get("rules"), dict), document
    assert document["rules"].get(".read", False) in (False, "false"), document
    assert document["rules"].get(".write", False) in (False, "false"), document


# --------------------------------------------------------------------------------------
# Rules semantics
# --------------------------------------------------------------------------------------


def test_users_read_and_write_only_their_own_node(launch, secret):
    """`users/$uid` rules: alice reads and writes her node only; anonymous callers get
    nothing; reading `/users` is denied because rules are not filters."""
    hearth = launch(rules=USER_RULES, flags=secret.flags)
    hearth.seed("users/bob", {"name": "Bob"})
    alice = secret.token("alice")

    assert_status(hearth.request("PUT", "users/alice", token=alice, json={"name": "Alice"}),
                  200, "alice writes her own node")
    response = hearth.request("GET", "users/alice", token=alice)
    assert_status(response, 200)
    assert response.json() == {"name": "Alice"}

    assert_denied(hearth.request("GET", "users/bob", token=alice), "alice reads bob")
    assert_denied(hearth.request("PUT", "users/bob", token=alice, json={"name": "Mallory"}),
                  "alice overwrites bob")
    assert_denied(hearth.request("DELETE", "users/bob", token=alice), "alice deletes bob")
    assert_denied(hearth.request("GET", "users", token=alice), "alice reads all users")
    assert_denied(hearth.request("GET", "users/alice"), "anonymous reads alice")
    assert_denied(hearth.request("PUT", "users/carol", json={"name": "Carol"}),
                  "anonymous creates a user")
    assert hearth.admin_value("users") == {"alice": {"name": "Alice"}, "bob": {"name": "Bob"}}

    # .validate is not evaluated for deletions.
    assert_status(hearth.request("DELETE", "users/alice", token=alice), 200, "alice deletes")
    assert hearth.admin_value("users") == {"bob": {"name": "Bob"}}


def test_validate_rules_reject_bad_data_and_leave_it_unchanged(launch, secret):
    """Every `.validate` on the way must pass: a non-string or too long name, an unknown
    child (`$other`) or a missing name is denied; a valid change goes through."""
    hearth = launch(rules=USER_RULES, flags=secret.flags)
    hearth.seed("users/alice", {"name": "Alice"})
    alice = secret.token("alice")

    bad_writes = [
        ("PUT", "users/alice", {"name": 42}, "name is a number"),
        ("PUT", "users/alice", {"name": "x" * 20}, "name is 20 characters long"),
        ("PUT", "users/alice", {"name": "Alice", "age": 30}, "unknown child age"),
        ("PUT", "users/alice", {"nickname": "Al"}, "no name child"),
        ("PUT", "users/alice/name", 7, "a number written at name"),
        ("PUT", "users/alice/age", 30, "a value written at an unknown child"),
        ("PATCH", "users/alice", {"age": 30}, "an unknown child patched in"),
    ]
    for method, path, value, why in bad_writes:
        assert_denied(hearth.request(method, path, token=alice, json=value), why)
        assert hearth.admin_value("users/alice") == {"name": "Alice"}, why

    assert_status(hearth.request("PUT", "users/alice/name", token=alice, json="y" * 19), 200,
                  "a 19-character name")
    assert hearth.admin_value("users/alice") == {"name": "y" * 19}


def test_multi_path_patch_is_denied_as_a_whole(launch, secret):
    """A PATCH touching alice's and bob's nodes as alice is denied and changes neither; a
    PATCH of only alice's own data succeeds, even when sent at `/users`."""
    hearth = launch(rules=USER_RULES, flags=secret.flags)
    original = {"alice": {"name": "Alice"}, "bob": {"name": "Bob"}}
    hearth.seed("users", original)
    alice = secret.token("alice")

    assert_denied(hearth.request("PATCH", "users", token=alice,
                                 json={"alice/name": "Alice2", "bob/name": "Bob2"}),
                  "PATCH of alice and bob at /users")
    assert hearth.admin_value("users") == original
    assert_denied(hearth.request("PATCH", "", token=alice,
                                 json={"users/alice/name": "Alice3", "users/bob": None}),
                  "PATCH of alice and bob at the root")
    assert hearth.admin_value("users") == original
    assert_denied(hearth.request("PATCH", "users/alice", token=alice,
                                 json={"name": "Alicia", "age": 3}),
                  "PATCH with one valid and one invalid child")
    assert hearth.admin_value("users") == original

    assert_status(hearth.request("PATCH", "users/alice", token=alice, json={"name": "Alicia"}),
                  200, "PATCH of alice's name")
    assert hearth.admin_value("users") == {"alice": {"name": "Alicia"}, "bob": {"name": "Bob"}}
    assert_status(hearth.request("PATCH", "users", token=alice, json={"alice/name": "Ally"}),
                  200, "PATCH of alice's name sent at /users")
    assert hearth.admin_value("users") == {"alice": {"name": "Ally"}, "bob": {"name": "Bob"}}


def test_grants_cascade_down_and_rules_are_not_filters(launch):
    """A `.read`/`.write` grant covers all descendants even where a deeper rule says
    false; a deeper grant does not open its parent."""
    rules = {
        "rules": {
            "public": {".read": True, "x": {".read": False}},
            "private": {".read": False, "y": {".read": True}},
            "open": {".write": True, "locked": {".write": False}},
        }
    }
    hearth = launch(rules=rules)
    hearth.seed("", {"public": {"x": {"y": "deep"}, "z": 1},
                     "private": {"y": "visible", "z": "hidden"}})

    for path, expected in [("public/x/y", "deep"), ("public/x", {"y": "deep"}),
                           ("public", {"x": {"y": "deep"}, "z": 1}), ("private/y", "visible")]:
        response = hearth.request("GET", path)
        assert_status(response, 200, f"anonymous read of /{path}")
        assert response.json() == expected

    for path in ["private", "private/z", ""]:
        assert_denied(hearth.request("GET", path), f"anonymous read of /{path}")

    assert_status(hearth.request("PUT", "open/locked/k", json="written"), 200,
                  "write below a .write: false under a granting parent")
    assert_denied(hearth.request("PUT", "elsewhere", json=1), "write without any grant")
    assert hearth.admin_value("open") == {"locked": {"k": "written"}}
    assert hearth.admin_value("elsewhere") is None


# --------------------------------------------------------------------------------------
# JWT verification
# --------------------------------------------------------------------------------------


def test_rs256_tokens_are_verified_with_a_pem_public_key(launch, tmp_path, rsa_key,
                                                         other_rsa_key, ec_key):
    """`--jwt-public-key` with an RSA key accepts RS256 tokens signed by its private key and
    refuses other keys and HS256 tokens keyed with the PEM text (algorithm confusion)."""
    pem_path = write_public_pem(tmp_path / "rsa.pem", rsa_key)
    hearth = launch(rules=WHOAMI_RULES, flags=["--jwt-public-key", str(pem_path)])

    good = jwt.encode(claims("alice"), rsa_key, algorithm="RS256")
    for via in TRANSPORTS:
        assert_accepted_as(hearth, good, "alice", f"RS256 via {via}", via=via)

    pem = pem_path.read_bytes()
    rejected = {
        "RS256 signed by another RSA key": jwt.encode(claims("alice"), other_rsa_key,
                                                      algorithm="RS256"),
        "ES256 signed by an unconfigured key": jwt.encode(claims("alice"), ec_key,
                                                          algorithm="ES256"),
        "HS256 keyed with the PEM file": hand_signed_token(pem, claims("alice")),
        "HS256 keyed with the PEM text without its newline":
            hand_signed_token(pem.rstrip(b"\n"), claims("alice")),
        "alg none": unsigned_token(claims("alice")),
    }
    for why, token in rejected.items():
        assert_credential_rejected(hearth.request("GET", "whoami/alice", token=token), why)


def test_es256_tokens_are_verified_with_a_p256_public_key(launch, tmp_path, rsa_key, ec_key):
    """`--jwt-public-key` with a P-256 key accepts ES256 tokens and nothing else."""
    pem_path = write_public_pem(tmp_path / "ec.pem", ec_key)
    hearth = launch(rules=WHOAMI_RULES, flags=["--jwt-public-key", str(pem_path)])

    assert_accepted_as(hearth, jwt.encode(claims("erin"), ec_key, algorithm="ES256"), "erin")

    rejected = {
        "ES256 signed by another P-256 key":
            jwt.encode(claims("erin"), ec.generate_private_key(ec.SECP256R1()),
                       algorithm="ES256"),
        "RS256 signed by an unconfigured key": jwt.encode(claims("erin"), rsa_key,
                                                          algorithm="RS256"),
        "HS256 keyed with the PEM file": hand_signed_token(pem_path.read_bytes(),
                                                           claims("erin")),
    }
    for why, token in rejected.items():
        assert_credential_rejected(hearth.request("GET", "whoami/erin", token=token), why)


def test_several_secrets_and_keys_can_be_trusted_at_once(launch, tmp_path, rsa_key, ec_key):
    """`--jwt-secret-file` and `--jwt-public-key` are repeatable; each trusted key works."""
    first = write_secret(tmp_path / "secret-1")
    second = write_secret(tmp_path / "secret-2")
    flags = [*first.flags, *second.flags,
             "--jwt-public-key", str(write_public_pem(tmp_path / "rsa.pem", rsa_key)),
             "--jwt-public-key", str(write_public_pem(tmp_path / "ec.pem", ec_key))]
    hearth = launch(rules=WHOAMI_RULES, flags=flags)

    assert_accepted_as(hearth, first.token("one"), "one", "HS256 with the first secret")
    assert_accepted_as(hearth, second.token("two"), "two", "HS256 with the second secret")
    assert_accepted_as(hearth, jwt.encode(claims("three"), rsa_key, algorithm="RS256"), "three",
                       "RS256")
    assert_accepted_as(hearth, jwt.encode(claims("four"), ec_key, algorithm="ES256"), "four",
                       "ES256")
    assert_credential_rejected(
        hearth.request("GET", "whoami/five",
                       token=hs256_token(secrets.token_hex(32), claims("five"))),
        "HS256 with an untrusted secret")


def test_jwks_file_keys_are_chosen_by_kid(launch, tmp_path, rsa_key, other_rsa_key, ec_key):
    """With `--jwks-file`, a token is verified with the key its `kid` names; a missing or
    unknown kid, or a kid naming another key, is refused."""
    def jwk(public_key, algorithm, kid: str) -> dict:
        """A JWKS entry laid out like Google's: key material plus kid, alg and use."""
        to_jwk = RSAAlgorithm.to_jwk if algorithm == "RS256" else ECAlgorithm.to_jwk
        fields = json.loads(to_jwk(public_key))
        fields.pop("key_ops", None)
        return {**fields, "kid": kid, "alg": algorithm, "use": "sig"}

    rsa_jwk = jwk(rsa_key.public_key(), "RS256", "rsa-1")
    ec_jwk = jwk(ec_key.public_key(), "ES256", "ec-1")
    jwks_path = tmp_path / "jwks.json"
    jwks_path.write_text(json.dumps({"keys": [rsa_jwk, ec_jwk]}))
    hearth = launch(rules=WHOAMI_RULES, flags=["--jwks-file", str(jwks_path)])

    assert_accepted_as(hearth, jwt.encode(claims("rita"), rsa_key, algorithm="RS256",
                                          headers={"kid": "rsa-1"}), "rita", "RS256 kid rsa-1")
    assert_accepted_as(hearth, jwt.encode(claims("eve"), ec_key, algorithm="ES256",
                                          headers={"kid": "ec-1"}), "eve", "ES256 kid ec-1")

    rejected = {
        "no kid": jwt.encode(claims("rita"), rsa_key, algorithm="RS256"),
        "unknown kid": jwt.encode(claims("rita"), rsa_key, algorithm="RS256",
                                  headers={"kid": "rsa-2"}),
        "kid of the EC key on an RS256 token": jwt.encode(claims("rita"), rsa_key,
                                                          algorithm="RS256",
                                                          headers={"kid": "ec-1"}),
        "right kid, wrong key": jwt.encode(claims("rita"), other_rsa_key, algorithm="RS256",
                                           headers={"kid": "rsa-1"}),
    }
    for why, token in rejected.items():
        assert_credential_rejected(hearth.request("GET", "whoami/rita", token=token), why)


def test_legacy_custom_tokens_use_their_d_payload_as_auth(launch, secret):
    """A legacy Firebase custom token (`v`, `iat`, `d`) signed with the HS256 secret gives
    `auth` = `d`, so `auth.uid` and other `d` fields are visible to rules."""
    rules = {"rules": {"legacy": {".read": "auth.uid == 'legacy-user'"},
                       "editors": {".read": "auth.role == 'editor'"}}}
    hearth = launch(rules=rules, flags=secret.flags)
    hearth.seed("", {"legacy": "for legacy-user", "editors": "for editors"})
    now = int(time.time())

    token = secret.sign({"v": 0, "iat": now, "d": {"uid": "legacy-user", "role": "editor"}})
    for via in TRANSPORTS:
        response = hearth.request("GET", "legacy", token=token, via=via)
        assert_status(response, 200, f"legacy token via {via}")
        assert response.json() == "for legacy-user"
    assert_status(hearth.request("GET", "editors", token=token), 200, "auth.role from d")

    stranger = secret.sign({"v": 0, "iat": now, "d": {"uid": "someone-else", "role": "viewer"}})
    assert_denied(hearth.request("GET", "legacy", token=stranger), "another legacy user")
    assert_denied(hearth.request("GET", "editors", token=stranger), "a viewer")

    expired = secret.sign({"v": 0, "iat": now - 7200, "exp": now - 3600,
                           "d": {"uid": "legacy-user", "role": "editor"}})
    assert_credential_rejected(hearth.request("GET", "legacy", token=expired),
                               "an expired legacy token")


def test_token_lifetime_is_enforced_with_the_default_leeway(launch, secret):
    """`exp` and `nbf` are checked with 60 s of leeway by default."""
    hearth = launch(rules=WHOAMI_RULES, flags=secret.flags)
    now = int(time.time())

    assert_accepted_as(hearth, secret.token("ann", iat=now - 3600, exp=now - 20), "ann",
                       "expired 20 s ago (within the leeway)")
    assert_accepted_as(hearth, secret.token("ann", nbf=now + 20), "ann",
                       "valid in 20 s (within the leeway)")

    rejected = {
        "expired an hour ago": secret.token("ann", iat=now - 7200, exp=now - 3600),
        "not valid for another hour": secret.token("ann", nbf=now + 3600),
    }
    for why, token in rejected.items():
        assert_credential_rejected(hearth.request("GET", "whoami/ann", token=token), why)


def test_jwt_leeway_flag_sets_the_allowed_clock_skew(launch, secret):
    """`--jwt-leeway 0` refuses a token that expired seconds ago; `--jwt-leeway 600`
    accepts one that expired five minutes ago, but not one that expired 20 minutes ago."""
    strict = launch(rules=WHOAMI_RULES, flags=[*secret.flags, "--jwt-leeway", "0"])
    now = int(time.time())
    assert_credential_rejected(
        strict.request("GET", "whoami/ann", token=secret.token("ann", iat=now - 600,
                                                                  exp=now - 5)),
        "expired 5 s ago with no leeway")
    assert_accepted_as(strict, secret.token("ann"), "ann", "a current token with no leeway")

    lenient = launch(rules=WHOAMI_RULES, flags=[*secret.flags, "--jwt-leeway", "600"])
    now = int(time.time())
    assert_accepted_as(lenient, secret.token("ann", iat=now - 3600, exp=now - 300), "ann",
                       "expired 5 min ago with 10 min leeway")
    assert_accepted_as(lenient, secret.token("ann", nbf=now + 300), "ann",
                       "valid in 5 min with 10 min leeway")
    assert_credential_rejected(
        lenient.request("GET", "whoami/ann", token=secret.token("ann", iat=now - 7200,
                                                                   exp=now - 1200)),
        "expired 20 min ago with 10 min leeway")


def test_unacceptable_tokens_are_refused_and_never_treated_as_anonymous(launch, secret):
    """Bad signatures, `alg: none` outside emulator mode, garbage and tampered tokens give
    401 on every transport, even where an anonymous caller would be allowed."""
    rules = {"rules": {"inbox": {".read": True, ".write": "auth == null"},
                       **WHOAMI_RULES["rules"]}}
    hearth = launch(rules=rules, flags=secret.flags)

    good = secret.token("alice")
    header, _payload, signature = good.split(".")
    bad = {
        "signed with another secret": hs256_token(secrets.token_hex(32), claims("alice")),
        "alg none outside emulator mode": unsigned_token(claims("alice")),
        "not a JWT": "not-a-jwt",
        "three garbage segments": "abc.def.ghi",
        "empty segments": "..",
        "payload swapped after signing": f"{header}.{_segment(claims('root'))}.{signature}",
        "payload is not JSON": f"{header}.{_b64url(b'not json')}.{signature}",
        "signature cut short": good[:-4],
        "unknown algorithm": hand_signed_token(secret.value.encode(), claims("alice"),
                                               alg="HS999"),
    }
    for why, token in bad.items():
        for via in TRANSPORTS:
            label = f"{why} (via {via})"
            assert_credential_rejected(
                hearth.request("GET", "whoami/alice", token=token, via=via), label)
            assert_credential_rejected(
                hearth.request("GET", "inbox", token=token, via=via), label + ", public read")
            assert_credential_rejected(
                hearth.request("POST", "inbox", token=token, via=via, json={"from": why}),
                label + ", anonymous-only write")
    assert hearth.admin_value("inbox") is None

    assert_status(hearth.request("POST", "inbox", json={"from": "anonymous"}), 200,
                  "an anonymous POST still works")
    assert_accepted_as(hearth, good, "alice", "the well-signed token still works")


def test_issuer_and_audience_are_checked_when_configured(launch, secret):
    """With `--jwt-issuer` and `--jwt-audience`, a token must carry both, matching."""
    issuer = f"https://securetoken.google.com/{PROJECT}"
    hearth = launch(rules=WHOAMI_RULES,
                    flags=[*secret.flags, "--jwt-issuer", issuer, "--jwt-audience", PROJECT])

    assert_accepted_as(hearth, secret.token("ida", iss=issuer, aud=PROJECT), "ida")

    rejected = {
        "wrong issuer": secret.token("ida", iss="https://evil.example.com", aud=PROJECT),
        "wrong audience": secret.token("ida", iss=issuer, aud="another-project"),
        "no issuer": secret.token("ida", aud=PROJECT),
        "no audience": secret.token("ida", iss=issuer),
    }
    for why, token in rejected.items():
        assert_credential_rejected(hearth.request("GET", "whoami/ida", token=token), why)


def test_token_claims_are_visible_to_rules(launch, secret):
    """`auth.uid` comes from `uid`, else `user_id`, else `sub`; `auth.provider` from
    `firebase.sign_in_provider` (else "custom"); every claim is under `auth.token`."""
    rules = {
        "rules": {
            **WHOAMI_RULES["rules"],
            "providers": {"$provider": {".read": "auth != null && auth.provider == $provider"}},
            "teams": {"$team": {".read": "auth.token.team == $team"}},
            "admins": {".read": "auth.token.admin == true"},
            "verified": {".read": "auth.token.email_verified == true && "
                                  "auth.token.email.endsWith('@example.com')"},
            "sign-in": {"$provider": {
                ".read": "auth.token.firebase.sign_in_provider == $provider"}},
        }
    }
    hearth = launch(rules=rules, flags=secret.flags)

    def readable(token: str, path: str) -> bool:
        response = hearth.request("GET", path, token=token)
        if response.status_code == 401:
            assert_denied(response, f"/{path}")
            return False
        assert_status(response, 200, f"/{path}")
        return True

    only_sub = secret.token("s-1")
    assert_accepted_as(hearth, only_sub, "s-1", "uid from sub")
    assert readable(only_sub, "providers/custom"), "provider defaults to custom"

    with_user_id = secret.token("s-2", user_id="u-2")
    assert_accepted_as(hearth, with_user_id, "u-2", "user_id beats sub")
    assert not readable(with_user_id, "whoami/s-2")

    with_uid = secret.token("s-3", user_id="u-3", uid="x-3")
    assert_accepted_as(hearth, with_uid, "x-3", "uid beats user_id and sub")
    assert not readable(with_uid, "whoami/u-3")

    password = secret.token("p-1", firebase={"sign_in_provider": "password", "identities": {}})
    assert readable(password, "providers/password")
    assert not readable(password, "providers/custom")
    assert readable(password, "sign-in/password")

    red = secret.token("r-1", team="red")
    assert readable(red, "teams/red")
    assert not readable(red, "teams/blue")
    assert not readable(red, "admins")

    assert readable(secret.token("a-1", admin=True), "admins")
    assert not readable(secret.token("a-2", admin="true"), "admins"), "no type coercion"
    assert readable(secret.token("e-1", email="e@example.com", email_verified=True), "verified")
    assert not readable(secret.token("e-2", email="e@example.com", email_verified=False),
                        "verified")


# --------------------------------------------------------------------------------------
# auth_variable_override
# --------------------------------------------------------------------------------------


def _override(value) -> dict:
    """The query parameter that asks to evaluate rules as `value` (JSON-encoded)."""
    return {"auth_variable_override": json.dumps(value)}


@pytest.fixture
def users_server(launch, secret) -> Hearth:
    """A server with `USER_AND_PUBLIC_RULES`, alice and bob's nodes and a public note."""
    hearth = launch(rules=USER_AND_PUBLIC_RULES, flags=secret.flags)
    hearth.seed("", {"users": {"alice": {"name": "Alice"}, "bob": {"name": "Bob"}},
                     "public": {"note": "hello"}})
    return hearth


def test_admin_with_auth_variable_override_obeys_that_users_rules(users_server):
    """An admin request with `auth_variable_override={"uid":"alice"}` is evaluated as alice,
    including `.validate`; without the override the admin bypasses the rules."""
    hearth = users_server
    as_alice = _override({"uid": "alice"})

    for via in TRANSPORTS:
        response = hearth.request("GET", "users/alice", token=hearth.admin_token, via=via,
                                  params=as_alice)
        assert_status(response, 200, f"override via {via}")
        assert response.json() == {"name": "Alice"}
        assert_denied(hearth.request("GET", "users/bob", token=hearth.admin_token, via=via,
                                     params=as_alice), f"override via {via} reads bob")

    assert_denied(hearth.admin("PUT", "users/bob", params=as_alice, json={"name": "Hacked"}),
                  "override writes bob")
    assert_denied(hearth.admin("PUT", "users/alice", params=as_alice, json={"name": 5}),
                  "override writes an invalid name")
    assert_denied(hearth.admin("GET", "users", params=as_alice), "override reads all users")
    assert_status(hearth.admin("PUT", "users/alice", params=as_alice, json={"name": "Alice2"}),
                  200, "override writes alice's node")

    assert hearth.admin_value("users") == {"alice": {"name": "Alice2"}, "bob": {"name": "Bob"}}
    assert_status(hearth.admin("PUT", "users/bob/age", json=40), 200,
                  "the admin without override ignores .validate")


def test_auth_variable_override_null_is_anonymous(users_server):
    """`auth_variable_override=null` evaluates the admin's request as an anonymous one."""
    hearth = users_server
    anonymous = {"auth_variable_override": "null"}

    assert_denied(hearth.admin("GET", "users/alice", params=anonymous), "read as anonymous")
    assert_denied(hearth.admin("PUT", "users/alice", params=anonymous, json={"name": "Anon"}),
                  "write as anonymous")
    response = hearth.admin("GET", "public", params=anonymous)
    assert_status(response, 200, "public read as anonymous")
    assert response.json() == {"note": "hello"}
    assert hearth.admin_value("users/alice") == {"name": "Alice"}


def test_auth_variable_override_is_ignored_for_non_admins(users_server, secret):
    """A user token or an anonymous caller cannot change identity with an override."""
    hearth = users_server
    alice = secret.token("alice")

    for via in TRANSPORTS:
        response = hearth.request("GET", "users/alice", token=alice, via=via,
                                  params=_override({"uid": "bob"}))
        assert_status(response, 200, f"alice with a bob override via {via}")
        assert_denied(hearth.request("GET", "users/bob", token=alice, via=via,
                                     params=_override({"uid": "bob"})),
                      f"alice with a bob override reads bob via {via}")
    assert_denied(hearth.request("PUT", "users/bob", token=alice,
                                 params=_override({"uid": "bob"}), json={"name": "Hacked"}),
                  "alice with a bob override writes bob")
    assert_status(hearth.request("GET", "users/alice", token=alice,
                                 params={"auth_variable_override": "null"}),
                  200, "alice with a null override is still alice")

    assert_denied(hearth.request("GET", "users/alice", params=_override({"uid": "alice"})),
                  "anonymous with an alice override")
    assert_denied(hearth.request("PUT", "users/alice", params=_override({"uid": "alice"}),
                                 json={"name": "Hacked"}),
                  "anonymous with an alice override writes")
    assert hearth.admin_value("users") == {"alice": {"name": "Alice"}, "bob": {"name": "Bob"}}


# --------------------------------------------------------------------------------------
# Emulator mode
# --------------------------------------------------------------------------------------


def test_emulator_without_rules_allows_everything(launch):
    """`--emulator` with no rules file and no uploaded rules allows all reads and writes,
    like the Firebase emulator's default."""
    hearth = launch(emulator=True, admin_token=None)

    assert_status(hearth.request("PUT", "a/b", json={"c": 1}), 200, "anonymous PUT")
    posted = hearth.request("POST", "list", json="item")
    assert_status(posted, 200, "anonymous POST")
    assert_status(hearth.request("PATCH", "a", json={"d": 2}), 200, "anonymous PATCH")
    response = hearth.request("GET", "")
    assert_status(response, 200, "anonymous read of the root")
    assert response.json() == {"a": {"b": {"c": 1}, "d": 2},
                               "list": {posted.json()["name"]: "item"}}
    assert_status(hearth.request("DELETE", "list"), 200, "anonymous DELETE")

    response = hearth.request("GET", ".settings/rules", token=OWNER, params={"format": "strict"})
    assert_status(response, 200, "owner reads the default rules")
    document = json.loads(response.content)
    assert document["rules"].get(".read") in (True, "true"), document
    assert document["rules"].get(".write") in (True, "true"), document


def test_emulator_owner_is_admin_and_mock_tokens_are_users(launch):
    """In emulator mode `Bearer owner` uploads rules and bypasses them, and unsigned mock
    tokens are accepted as the user they name."""
    hearth = launch(emulator=True, admin_token=None)
    uploaded = hearth.upload_rules(json.dumps(USER_RULES), token=OWNER)
    assert_status(uploaded, 200, "owner uploads rules")
    assert uploaded.json() == {"status": "ok"}
    assert_status(hearth.request("PUT", "users/bob", token=OWNER, json={"name": "Bob"}), 200,
                  "owner writes past the rules")

    alice = emulator_mock_token("alice")
    for via in ("header", "auth"):
        assert_status(hearth.request("PUT", "users/alice", token=alice, via=via,
                                     json={"name": "Alice"}), 200, f"mock alice via {via}")
        response = hearth.request("GET", "users/alice", token=alice, via=via)
        assert_status(response, 200)
        assert response.json() == {"name": "Alice"}
    assert_denied(hearth.request("GET", "users/bob", token=alice), "mock alice reads bob")
    assert_denied(hearth.request("PUT", "users/bob", token=alice, json={"name": "M"}),
                  "mock alice writes bob")
    assert_denied(hearth.request("GET", "users/alice"), "anonymous read")

    response = hearth.request("GET", "users", token=OWNER)
    assert_status(response, 200, "owner reads everything")
    assert response.json() == {"alice": {"name": "Alice"}, "bob": {"name": "Bob"}}
    response = hearth.request("GET", ".settings/rules", token=OWNER, params={"format": "strict"})
    assert_status(response, 200)
    assert json.loads(response.content) == USER_RULES


def test_emulator_accepts_the_sdk_default_mock_token(launch):
    """The JS SDK's default mock token (`iat` 0, so expired since 1970) is accepted in
    emulator mode, as the Firebase emulators do for rules-unit-testing."""
    hearth = launch(emulator=True, admin_token=None)
    assert_status(hearth.upload_rules(json.dumps(WHOAMI_RULES), token=OWNER), 200)
    assert_accepted_as(hearth, emulator_mock_token("alice", iat=0), "alice",
                       "the SDK's default mock token")


def test_emulator_uses_the_rules_file_when_given(launch):
    """`--emulator --rules FILE` enforces the file instead of allowing everything."""
    hearth = launch(emulator=True, admin_token=None,
                    rules={"rules": {"open": {".read": True}}})
    assert_status(hearth.request("PUT", "open", token=OWNER, json="visible"), 200,
                  "owner writes past the file's rules")

    response = hearth.request("GET", "open")
    assert_status(response, 200, "read granted by the file")
    assert response.json() == "visible"
    assert_denied(hearth.request("GET", "closed"), "read not granted by the file")
    assert_denied(hearth.request("PUT", "open", json="changed"), "write not granted")
    assert hearth.request("GET", "open", token=OWNER).json() == "visible"


# --------------------------------------------------------------------------------------
# /.settings/rules.json
# --------------------------------------------------------------------------------------


def test_uploaded_rules_are_returned_verbatim_and_as_strict_json(launch, secret):
    """A PUT of a commented document is stored verbatim, `?format=strict` is plain JSON
    of the same rules, and the new rules are enforced at once."""
    hearth = launch(flags=secret.flags)
    response = hearth.upload_rules(UPLOADED_RULES_TEXT)
    assert_status(response, 200, "rules upload")
    assert response.json() == {"status": "ok"}

    assert hearth.rules_text() == UPLOADED_RULES_TEXT
    assert hearth.strict_rules() == UPLOADED_RULES

    alice = secret.token("alice")
    assert_status(hearth.request("GET", "posts"), 200, "anonymous reads posts")
    assert_denied(hearth.request("PUT", "posts/p1", json="anonymous post"), "anonymous writes")
    assert_status(hearth.request("PUT", "posts/p1", token=alice, json="by alice"), 200)
    assert_denied(hearth.request("GET", "notes"), "anonymous reads notes")
    assert_denied(hearth.request("GET", "notes", token=secret.token("bob")), "bob reads notes")
    assert_status(hearth.request("GET", "notes", token=alice), 200, "alice reads notes")
    assert hearth.admin_value("posts") == {"p1": "by alice"}


def test_dry_run_validates_rules_without_saving_them(launch):
    """`?dryRun=true` answers as an upload would but keeps the current rules."""
    hearth = launch()
    assert_status(hearth.upload_rules(OPEN_RULES_TEXT), 200)
    hearth.seed("open", "data")

    locked = '{"rules": {"open": {".read": false}}}'
    assert_status(hearth.upload_rules(locked, dry_run=True), 200, "dry run of valid rules")
    assert hearth.rules_text() == OPEN_RULES_TEXT
    assert_status(hearth.request("GET", "open"), 200, "the old rules are still enforced")

    text, marker = BAD_RULES["expression-syntax"]
    response = hearth.upload_rules(text, dry_run=True)
    assert_status(response, 400, "dry run of invalid rules")
    assert re.search(rf"\bLine {line_of(text, marker)}\b", response.json()["error"]), response.text
    assert hearth.rules_text() == OPEN_RULES_TEXT

    assert_status(hearth.upload_rules(locked), 200, "the real upload")
    assert_denied(hearth.request("GET", "open"), "the uploaded rules are enforced")


@pytest.mark.parametrize("case", sorted(BAD_RULES))
def test_invalid_rules_are_refused_with_their_line_and_the_old_rules_stay(launch, case):
    """An invalid document gets 400 with `Line <n>` of the error; nothing changes."""
    text, marker = BAD_RULES[case]
    hearth = launch()
    assert_status(hearth.upload_rules(OPEN_RULES_TEXT), 200)

    response = hearth.upload_rules(text)
    assert_status(response, 400, f"upload of {case}")
    error = response.json().get("error")
    assert isinstance(error, str), response.text
    assert re.search(rf"\bLine {line_of(text, marker)}\b", error), error

    assert hearth.rules_text() == OPEN_RULES_TEXT
    assert_status(hearth.request("PUT", "open", json="still open"), 200,
                  "the previous rules are still enforced")
    assert_denied(hearth.request("GET", "closed"))


def test_rules_endpoint_is_admin_only(launch, secret):
    """Anonymous callers and users (even with an `admin: true` claim) can neither read nor
    replace the rules; the `--rules` file stays the namespace's document."""
    file_rules = {"rules": {"open": {".read": True}}}
    hearth = launch(rules=file_rules, flags=secret.flags)
    allow_all = '{"rules": {".read": true, ".write": true}}'

    callers = {"anonymous": None, "a user": secret.token("alice"),
               "a user with an admin claim": secret.token("boss", admin=True)}
    for who, token in callers.items():
        assert_status(hearth.request("GET", ".settings/rules", token=token), 401,
                      f"{who} reads the rules")
        assert_status(hearth.request("GET", ".settings/rules", token=token,
                                     params={"format": "strict"}), 401,
                      f"{who} reads the strict rules")
        assert_status(hearth.upload_rules(allow_all, token=token), 401,
                      f"{who} uploads rules")

    assert hearth.strict_rules() == file_rules
    assert_denied(hearth.request("PUT", "open", json="x"), "the rules were not replaced")


def test_rules_are_per_namespace(launch):
    """Rules uploaded to one namespace do not apply to another."""
    hearth = launch()
    open_rules = '{"rules": {"open": {".read": true, ".write": true}}}'
    other_rules = '{"rules": {"other": {".read": true, ".write": true}}}'
    assert_status(hearth.upload_rules(open_rules, ns="rules-alpha"), 200)

    assert_status(hearth.request("PUT", "open", ns="rules-alpha", json="a"), 200)
    assert_denied(hearth.request("PUT", "open", ns="rules-beta", json="b"),
                  "alpha's rules applied to beta")
    assert hearth.strict_rules("rules-beta") != json.loads(open_rules)

    assert_status(hearth.upload_rules(other_rules, ns="rules-beta"), 200)
    assert_status(hearth.request("PUT", "other", ns="rules-beta", json="b"), 200)
    assert_denied(hearth.request("PUT", "open", ns="rules-beta", json="b"))
    assert_denied(hearth.request("PUT", "other", ns="rules-alpha", json="a"),
                  "beta's rules applied to alpha")
    assert hearth.rules_text("rules-alpha") == open_rules
    assert hearth.rules_text("rules-beta") == other_rules
    assert hearth.admin_value("", ns="rules-alpha") == {"open": "a"}
    assert hearth.admin_value("", ns="rules-beta") == {"other": "b"}


def test_uploaded_rules_survive_a_restart_and_replace_the_rules_file(launch):
    """Uploaded rules are persisted with the data and, for their namespace only, take the
    place of the `--rules` file, before and after a restart."""
    file_rules = {"rules": {"from-file": {".read": True}}}
    uploaded = '/* uploaded */ {"rules": {"uploaded": {".read": true}}} // end\n'
    admin_token = secrets.token_urlsafe(24)
    first = launch(rules=file_rules, admin_token=admin_token)
    assert_status(first.upload_rules(uploaded, ns="rules-alpha"), 200)
    for ns in ("rules-alpha", "rules-beta"):
        first.seed("", {"from-file": "f", "uploaded": "u"}, ns=ns)

    def check(hearth: Hearth, when: str) -> None:
        assert_denied(hearth.request("GET", "from-file", ns="rules-alpha"),
                      f"{when}: the file's rules applied to alpha")
        assert_status(hearth.request("GET", "uploaded", ns="rules-alpha"), 200,
                      f"{when}: alpha's uploaded rules")
        assert_status(hearth.request("GET", "from-file", ns="rules-beta"), 200,
                      f"{when}: the file's rules for beta")
        assert_denied(hearth.request("GET", "uploaded", ns="rules-beta"),
                      f"{when}: alpha's rules applied to beta")
        assert hearth.rules_text("rules-alpha") == uploaded
        assert hearth.strict_rules("rules-beta") == file_rules

    check(first, "before the restart")
    first.stop()
    second = launch(rules=file_rules, admin_token=admin_token, data_dir=first.data_dir)
    check(second, "after the restart")


@pytest.mark.parametrize("case", sorted(BAD_RULES))
def test_server_refuses_to_start_with_an_invalid_rules_file(hearth_binary, tmp_path, case):
    """`hearth serve --rules BAD` exits non-zero and names the line and column."""
    text, marker = BAD_RULES[case]
    rules_path = tmp_path / "bad.rules.json"
    rules_path.write_text(text)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    command = [str(hearth_binary), "serve", "--host", HOST, "--port", str(free_port()),
               "--data-dir", str(data_dir), "--admin-token", "an-admin-token-of-some-length", "--rules", str(rules_path)]
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=CLI_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hearth serve kept running with an invalid rules file ({case})")
    assert result.returncode != 0, result.stderr
    line = line_of(text, marker)
    assert re.search(rf"(?i)\bline {line}\b", result.stderr), result.stderr
    assert "column" in result.stderr.lower(), result.stderr


# --------------------------------------------------------------------------------------
# Command line: hearth token, hearth rules check
# --------------------------------------------------------------------------------------


def test_token_command_mints_hs256_tokens_the_server_accepts(hearth_binary, launch, secret):
    """`hearth token` prints an HS256 JWT with uid, sub, iat, exp and the `--claim` pairs
    (JSON values parsed, others kept as strings) that a server with the same
    `--jwt-secret-file` accepts."""
    result = run_cli(hearth_binary, "token", "--uid", "alice",
                     "--claim", "admin=true", "--claim", "team=red", "--claim", "level=3",
                     "--claim", "motto=hello world",
                     "--secret-file", str(secret.path), "--expires-in", "600")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.count(".") == 2 and "\n" not in token, result.stdout

    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    payload = jwt.decode(token, secret.value, algorithms=["HS256"])
    assert payload["uid"] == "alice"
    assert payload["sub"] == "alice"
    assert payload["admin"] is True
    assert payload["team"] == "red"
    assert payload["level"] == 3
    assert payload["motto"] == "hello world"
    assert isinstance(payload["iat"], int) and isinstance(payload["exp"], int)
    assert payload["exp"] - payload["iat"] == 600
    assert abs(payload["iat"] - time.time()) < 300

    rules = {"rules": {"teams": {"$team": {
        ".read": "auth.uid == 'alice' && auth.token.team == $team && auth.token.admin == true"
    }}}}
    hearth = launch(rules=rules, flags=secret.flags)
    assert_status(hearth.request("GET", "teams/red", token=token), 200, "the minted token")
    assert_denied(hearth.request("GET", "teams/blue", token=token))


def test_rules_check_accepts_a_valid_document(hearth_binary, tmp_path):
    """`hearth rules check` exits 0 and prints OK for a valid commented document."""
    path = tmp_path / "database.rules.json"
    path.write_text(UPLOADED_RULES_TEXT, encoding="utf-8")
    result = run_cli(hearth_binary, "rules", "check", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout, result.stdout


@pytest.mark.parametrize("case", sorted(BAD_RULES))
def test_rules_check_reports_the_line_and_column_of_an_error(hearth_binary, tmp_path, case):
    """`hearth rules check` exits non-zero and prints `Line <n>, column <c>`."""
    text, marker = BAD_RULES[case]
    path = tmp_path / "database.rules.json"
    path.write_text(text)
    result = run_cli(hearth_binary, "rules", "check", str(path))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert re.search(rf"\bLine {line_of(text, marker)}, column \d+", output), output
