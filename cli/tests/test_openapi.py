"""``platformctl openapi``: the API document, without a database."""

from __future__ import annotations

import json


def test_openapi_output_file_holds_valid_json_with_core_paths(cli, tmp_path):
    target = tmp_path / "openapi.json"
    result = cli("openapi", "-o", str(target))
    assert result.exit_code == 0, result.output
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["openapi"].startswith("3.")
    assert "/api/core/me" in document["paths"]
    assert not (tmp_path / "platform.db").exists()


def test_openapi_prints_to_stdout_by_default(cli):
    result = cli("openapi")
    assert result.exit_code == 0
    assert "/healthz" in json.loads(result.stdout)["paths"]
