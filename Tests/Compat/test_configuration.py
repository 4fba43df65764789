"""Configuration: one set of names from a JSON file (`--config` / HEARTH_CONFIG), environment
variables (HEARTH_*) and flags, in that order of strength; `--print-config` shows the result
with secrets masked; wrong values stop the server with a message naming the setting.
"""

from __future__ import annotations

import json
import os
import subprocess

from compat_helpers import local_session


SECRET = "s3cret-admin-token-that-must-not-show"


def run_hearth(binary, *args, env=None, config=None, tmp_path=None):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("HEARTH_")}
    environment.update(env or {})
    command = [str(binary), "serve", *args]
    if config is not None:
        path = tmp_path / "hearth.json"
        path.write_text(json.dumps(config) if not isinstance(config, str) else config)
        command += ["--config", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, env=environment)


def printed(output: str) -> dict[str, tuple[str, str]]:
    """`--print-config` lines as {name: (value, source)}."""
    settings = {}
    for line in output.splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        name, _, rest = line.partition("=")
        value, _, source = rest.partition("  # ")
        settings[name.strip()] = (value.strip(), source.strip())
    return settings


def test_flag_beats_environment_beats_file_beats_default(hearth_binary, tmp_path):
    result = run_hearth(
        hearth_binary, "--print-config", "--port", "9101",
        env={"HEARTH_PORT": "9102", "HEARTH_MAX_CONNECTIONS": "77", "HEARTH_CORS_ORIGIN": "https://a.example,https://b.example"},
        config={"port": 9103, "max-connections": 88, "fsync": "interval:5", "request-timeout-seconds": 7},
        tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    settings = printed(result.stdout)
    assert settings["port"] == ("9101", "flag")
    assert settings["max-connections"] == ("77", "environment HEARTH_MAX_CONNECTIONS")
    assert settings["fsync"] == ('"interval:5"', "file")
    assert settings["request-timeout-seconds"] == ("7.0", "file")
    assert settings["host"] == ('"127.0.0.1"', "default")
    assert settings["cors-origin"] == ('["https://a.example", "https://b.example"]', "environment HEARTH_CORS_ORIGIN")


def test_print_config_masks_secrets(hearth_binary, tmp_path):
    for args, env in [(["--admin-token", SECRET], {}), ([], {"HEARTH_ADMIN_TOKEN": SECRET})]:
        result = run_hearth(hearth_binary, "--print-config", *args, env=env)
        assert result.returncode == 0, result.stderr
        assert SECRET not in result.stdout + result.stderr
        assert printed(result.stdout)["admin-token"][0] == '"********"'
    result = run_hearth(hearth_binary, "--print-config", config={"admin-token": SECRET}, tmp_path=tmp_path)
    assert SECRET not in result.stdout + result.stderr


def test_wrong_values_stop_the_server_with_a_message(hearth_binary, tmp_path):
    cases = [
        ({"env": {"HEARTH_PORT": "nine thousand"}}, "HEARTH_PORT must be a whole number"),
        ({"config": {"port": "9000"}}, "port in"),
        ({"config": {"prot": 9000}}, 'unknown setting "prot"'),
        ({"config": "{not json"}, "not valid JSON"),
        ({"config": [1, 2]}, "must hold a JSON object"),
        ({"config": {"max-connections": 0}}, "max-connections must be at least 1"),
        ({"env": {"HEARTH_LOG_FORMAT": "xml"}}, "log-format must be text or json"),
        ({"env": {"HEARTH_FSYNC": "sometimes"}}, "fsync must be"),
        ({"env": {"HEARTH_EMULATOR": "maybe"}}, "HEARTH_EMULATOR must be true or false"),
    ]
    for options, message in cases:
        result = run_hearth(hearth_binary, "--print-config", tmp_path=tmp_path, **options)
        assert result.returncode == 2, (options, result.stdout, result.stderr)
        assert message in result.stderr, (options, result.stderr)


def test_unknown_environment_variable_is_reported(hearth_binary):
    result = run_hearth(hearth_binary, "--print-config", env={"HEARTH_MAX_CONECTIONS": "5"})
    assert result.returncode == 0
    assert "unknown environment variable HEARTH_MAX_CONECTIONS" in result.stdout


def test_missing_configuration_file_is_an_error(hearth_binary, tmp_path):
    result = run_hearth(hearth_binary, "--print-config", "--config", str(tmp_path / "absent.json"))
    assert result.returncode == 2
    assert "cannot read the configuration file" in result.stderr


def test_server_runs_with_the_file_and_environment_settings(hearth_launcher, tmp_path, monkeypatch):
    config = tmp_path / "hearth.json"
    config.write_text(json.dumps({"max-body-bytes": 50, "default-namespace": "fromfile"}))
    # The environment raises the file's body limit; the file's namespace stays.
    monkeypatch.setenv("HEARTH_MAX_BODY_BYTES", "200")
    server = hearth_launcher(tmp_path / "data", tmp_path, emulator=True, log_name="config",
                             extra_args=["--config", str(config)])
    client = local_session()
    assert client.put(f"{server.base_url}/a.json", json="x" * 100, timeout=10).status_code == 200
    too_big = client.put(f"{server.base_url}/a.json", json="x" * 300, timeout=10)
    assert too_big.status_code == 413
    assert client.get(f"{server.base_url}/a.json", params={"ns": "fromfile"}, timeout=10).json() == "x" * 100


def test_admin_token_and_token_file_from_different_layers_follow_precedence(hearth_binary, tmp_path):
    result = run_hearth(hearth_binary, "--print-config", env={"HEARTH_ADMIN_TOKEN": SECRET},
                        config={"admin-token-file": "/etc/hearth/admin-token"}, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    settings = printed(result.stdout)
    assert settings["admin-token"] == ('"********"', "environment HEARTH_ADMIN_TOKEN")
    assert settings["admin-token-file"] == ("(not set)", "default")
    # Both in the same layer is a contradiction, not a precedence question.
    result = run_hearth(hearth_binary, "--print-config", "--admin-token", SECRET, "--admin-token-file", "/x")
    assert result.returncode == 2
    assert "not both" in result.stderr
