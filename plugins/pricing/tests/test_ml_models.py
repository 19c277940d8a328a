"""ML models: upload checks (ONNX only, pickles refused, schema agreement, size), versions,
activation and fallback, the ``onnx`` engine serving the active version, decisions recording
the model version, the migration, and races at a running server. Models are built in the test
with ``onnx.helper`` (no binary fixtures).

Races (SQLite and PostgreSQL, ``platformctl serve``):

- concurrent activations of different versions: each is applied under the model's row lock,
  so all succeed one after the other and exactly one version is active at the end, the one
  activated last;
- concurrent fallbacks that each expect the same active version: exactly one succeeds, the
  others get a 409 naming the version it left active (no double rollback).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from platform_core.testing import EventRecord, fresh_database, prepared, served

API = "/api/pricing"
M = f"{API}/ml-models"
MAX_BYTES = 4096
ROUNDS = 3


@pytest.fixture
def platform_settings():
    return {"pricing": {"onnx_model": "spot", "ml_model_max_bytes": MAX_BYTES}}


def linear_model(
    weights: list[list[float]],
    bias: list[float],
    *,
    dtype: int = TensorProto.FLOAT,
    pad: int = 0,
    batch: str | int = "N",
) -> bytes:
    """``scores = X @ W + B``: X ``[batch, k]``, W ``[k, 3]``, scores for stay/switch/on-demand.

    ``pad`` adds an unused initializer of that many floats (to make a big model)."""
    np_type = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64}[dtype]
    k = len(weights)
    inits = [
        numpy_helper.from_array(np.array(weights, dtype=np_type), "W"),
        numpy_helper.from_array(np.array(bias, dtype=np_type), "B"),
    ]
    if pad:
        inits.append(numpy_helper.from_array(np.zeros(pad, dtype=np.float32), "padding"))
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["X", "W"], ["XW"]),
            helper.make_node("Add", ["XW", "B"], ["Y"]),
        ],
        "linear",
        [helper.make_tensor_value_info("X", dtype, [batch, k])],
        [helper.make_tensor_value_info("Y", dtype, [batch, 3])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def always(action: int, k: int = 1) -> bytes:
    """A model that always picks ``action`` (0 stay, 1 switch, 2 on-demand)."""
    bias = [0.0, 0.0, 0.0]
    bias[action] = 1.0
    return linear_model([[0.0, 0.0, 0.0]] * k, bias)


def schema(*names: str, kind: str = "float") -> str:
    return json.dumps([{"name": n, "type": kind} for n in names])


async def upload(
    http: Any,
    name: str,
    version: str,
    data: bytes,
    input_schema: str | None = None,
    **extra: str,
) -> Any:
    return await http.post(
        f"{M}/{name}/versions",
        data={
            "version": version,
            "input_schema": input_schema or schema("saving_percent"),
            **extra,
        },
        files={"artifact": ("model.onnx", data, "application/octet-stream")},
    )


def field_of(r: Any) -> str:
    assert r.status_code == 422, r.text
    return r.json()["errors"][0]["field"]


# -- upload -----------------------------------------------------------------------------------


async def test_upload_stores_a_version_with_digest_and_uploader(admin_client, platform):
    data = always(0)
    r = await upload(admin_client, "spot", "1.0", data, description="baseline")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["model"] == "spot" and body["version"] == "1.0" and body["active"] is False
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["size_bytes"] == len(data)
    assert body["input_schema"] == [{"name": "saving_percent", "type": "float"}]
    assert body["output_kind"] == "scores" and body["input_name"] == "X"
    assert body["created_by"] is not None and body["description"] == "baseline"
    assert "artifact" not in body
    got = await admin_client.get(f"{M}/spot/versions/1.0/artifact")
    assert got.status_code == 200 and got.content == data
    assert got.headers["x-content-sha256"] == body["sha256"]
    model = (await admin_client.get(f"{M}/spot")).json()
    assert model["name"] == "spot" and model["active_version"] is None


async def test_upload_of_a_pickle_is_refused_naming_the_artifact(admin_client):
    r = await upload(admin_client, "spot", "1", pickle.dumps({"coef": [1.0, 2.0]}))
    assert field_of(r) == "artifact"
    assert "pickle" in r.json()["detail"] and "arbitrary code" in r.json()["detail"]


async def test_upload_of_a_joblib_zip_is_refused(admin_client):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("model/data.pkl", pickle.dumps([1, 2, 3]))
    r = await upload(admin_client, "spot", "1", buf.getvalue())
    assert field_of(r) == "artifact" and "zip" in r.json()["detail"]


@pytest.mark.parametrize("data", [b"not a model at all", b"\x08\x07" + b"\xff" * 40, b""])
async def test_upload_of_garbage_is_refused(admin_client, data):
    r = await upload(admin_client, "spot", "1", data)
    assert field_of(r) == "artifact"
    assert (await admin_client.get(f"{M}/spot/versions/1")).status_code == 404


async def test_upload_with_external_data_is_refused(admin_client):
    model = onnx.load_from_string(linear_model([[1.0, 0.0, 0.0]], [0.0, 0.0, 0.0]))
    weight = model.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="/etc/passwd")
    r = await upload(admin_client, "spot", "1", model.SerializeToString())
    assert field_of(r) == "artifact" and "external data" in r.json()["detail"]


async def test_upload_whose_feature_count_disagrees_is_refused(admin_client):
    r = await upload(
        admin_client, "spot", "1", always(1, k=2), schema("saving_percent", "pool_count", "is_spot")
    )
    assert field_of(r) == "input_schema" and "3 features" in r.json()["detail"]


async def test_upload_whose_feature_type_disagrees_is_refused(admin_client):
    r = await upload(admin_client, "spot", "1", always(1), schema("saving_percent", kind="double"))
    assert field_of(r) == "input_schema" and "tensor(float)" in r.json()["detail"]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps([{"name": "shoe_size", "type": "float"}]),
        json.dumps([{"name": "is_spot", "type": "string"}]),
        json.dumps([{"name": "is_spot", "type": "float"}, {"name": "is_spot", "type": "float"}]),
        json.dumps([{"name": "is_spot", "type": "float"}, {"name": "pool_count", "type": "int64"}]),
        "[" * 100_000,
        "[" * 20_000 + "]" * 20_000,
    ],
)
async def test_upload_with_a_bad_input_schema_is_refused(admin_client, text):
    r = await upload(admin_client, "spot", "1", always(1), text)
    assert field_of(r) == "input_schema"


async def test_upload_of_a_model_with_a_fixed_batch_above_one_is_refused(admin_client):
    r = await upload(admin_client, "spot", "1", linear_model([[1.0, 0, 0]], [0, 0, 0], batch=4))
    assert field_of(r) == "artifact" and "[batch, 1]" in r.json()["detail"]


async def test_upload_over_the_size_limit_is_refused_naming_it(admin_client):
    data = linear_model([[1.0, 0.0, 0.0]], [0.0, 0.0, 0.0], pad=MAX_BYTES // 4)
    assert len(data) > MAX_BYTES
    onnx.checker.check_model(onnx.load_from_string(data))  # a valid model, only too big
    r = await upload(admin_client, "spot", "1", data)
    assert r.status_code == 413, r.text
    assert "artifact" in r.json()["detail"] and str(MAX_BYTES) in r.json()["detail"]


async def test_version_none_is_reserved(admin_client):
    assert field_of(await upload(admin_client, "spot", "None", always(0))) == "version"


async def test_duplicate_version_is_a_conflict(admin_client):
    assert (await upload(admin_client, "spot", "1", always(0))).status_code == 201
    r = await upload(admin_client, "spot", "1", always(1))
    assert r.status_code == 409, r.text
    assert (await upload(admin_client, "other", "1", always(1))).status_code == 201


async def test_double_precision_and_label_models_are_accepted(admin_client):
    data = linear_model([[1.0, 0, 0]], [0, 0, 0], dtype=TensorProto.DOUBLE)
    r = await upload(admin_client, "spot", "d", data, schema("saving_percent", kind="double"))
    assert r.status_code == 201, r.text
    label = helper.make_model(
        helper.make_graph(
            [
                helper.make_node("ArgMax", ["X"], ["L"], axis=1, keepdims=0),
            ],
            "argmax",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3])],
            [helper.make_tensor_value_info("L", TensorProto.INT64, ["N"])],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    label.ir_version = 8
    r = await upload(
        admin_client,
        "spot",
        "l",
        label.SerializeToString(),
        schema("current_spot_price", "target_spot_price", "on_demand_price"),
    )
    assert r.status_code == 201, r.text
    assert r.json()["output_kind"] == "label"


async def test_non_admins_cannot_manage_models(admin_client, member_client, tenants):
    c = await tenants.client()
    assert (await upload(admin_client, "spot", "1", always(0))).status_code == 201
    for http in (member_client, c.admin_http, c.http):
        assert (await upload(http, "spot", "2", always(0))).status_code == 403
        assert (await http.get(f"{M}/spot/versions/1/artifact")).status_code == 403
        assert (await http.get(M)).status_code == 403
        r = await http.post(f"{M}/spot/activate", json={"version": "1"})
        assert r.status_code == 403


# -- activation, fallback, deletion -----------------------------------------------------------


async def three_versions(http: Any) -> None:
    for version in ("1", "2", "3"):
        assert (await upload(http, "spot", version, always(0))).status_code == 201


async def active_versions(http: Any) -> list[str]:
    items = (await http.get(f"{M}/spot/versions")).json()["items"]
    return [v["version"] for v in items if v["active"]]


async def test_activate_keeps_exactly_one_active_version(admin_client):
    await three_versions(admin_client)
    for version in ("1", "2", "3", "2"):
        r = await admin_client.post(f"{M}/spot/activate", json={"version": version})
        assert r.status_code == 200 and r.json()["active_version"] == version
        assert await active_versions(admin_client) == [version]
    listed = (await admin_client.get(M)).json()["items"]
    assert [(m["name"], m["active_version"]) for m in listed] == [("spot", "2")]


async def test_activate_with_a_stale_expectation_is_a_conflict_naming_the_active(admin_client):
    await three_versions(admin_client)
    r = await admin_client.post(
        f"{M}/spot/activate", json={"version": "1", "expected_active": "none"}
    )
    assert r.status_code == 200
    r = await admin_client.post(f"{M}/spot/activate", json={"version": "2", "expected_active": "3"})
    assert r.status_code == 409 and r.json()["current_state"] == "1"
    assert await active_versions(admin_client) == ["1"]


async def test_activate_an_unknown_version_or_model_is_404(admin_client):
    await three_versions(admin_client)
    assert (await admin_client.post(f"{M}/spot/activate", json={"version": "9"})).status_code == 404
    assert (await admin_client.post(f"{M}/nope/activate", json={"version": "1"})).status_code == 404


async def test_fallback_returns_to_the_previous_versions_in_turn(admin_client):
    await three_versions(admin_client)
    r = await admin_client.post(f"{M}/spot/fallback")
    assert r.status_code == 409 and r.json()["current_state"] == "none"
    for version in ("1", "2", "3"):
        await admin_client.post(f"{M}/spot/activate", json={"version": version})
    r = await admin_client.post(f"{M}/spot/fallback")
    assert r.status_code == 200, r.text
    assert (r.json()["active_version"], r.json()["rolled_back"]) == ("2", "3")
    r = await admin_client.post(f"{M}/spot/fallback", json={})
    assert (r.json()["active_version"], r.json()["rolled_back"]) == ("1", "2")
    r = await admin_client.post(f"{M}/spot/fallback")
    assert r.status_code == 409 and r.json()["current_state"] == "1"
    three = (await admin_client.get(f"{M}/spot/versions/3")).json()
    assert three["rolled_back_at"] is not None and three["active"] is False
    r = await admin_client.post(f"{M}/spot/fallback", json={"version": "3"})
    assert r.status_code == 200 and r.json()["active_version"] == "3"
    assert await active_versions(admin_client) == ["3"]


async def test_fallback_with_a_stale_expectation_is_a_conflict(admin_client):
    await three_versions(admin_client)
    for version in ("1", "2"):
        await admin_client.post(f"{M}/spot/activate", json={"version": version})
    r = await admin_client.post(f"{M}/spot/fallback", json={"expected_active": "1"})
    assert r.status_code == 409 and r.json()["current_state"] == "2"
    r = await admin_client.post(f"{M}/spot/fallback", json={"expected_active": "2"})
    assert r.status_code == 200 and r.json()["active_version"] == "1"


async def test_delete_refuses_the_active_version_and_removes_others(admin_client):
    await three_versions(admin_client)
    await admin_client.post(f"{M}/spot/activate", json={"version": "2"})
    r = await admin_client.delete(f"{M}/spot/versions/2")
    assert r.status_code == 409 and r.json()["current_state"] == "2"
    assert (await admin_client.delete(f"{M}/spot/versions/1")).status_code == 204
    assert (await admin_client.get(f"{M}/spot/versions/1")).status_code == 404
    assert (await admin_client.delete(f"{M}/spot/versions/1")).status_code == 404
    versions = (await admin_client.get(f"{M}/spot/versions")).json()["items"]
    assert [v["version"] for v in versions] == ["3", "2"]


async def test_feature_catalogue_lists_every_feature(admin_client):
    body = (await admin_client.get(f"{API}/ml-features")).json()
    names = [f["name"] for f in body["items"]]
    assert "saving_percent" in names and "on_demand_price" in names
    assert body["types"] == ["float", "double", "int64"]


# -- the onnx engine --------------------------------------------------------------------------


async def onnx_agent(tenants: Any, admin_client: Any) -> Any:
    """An agent in us-east-1a whose pool costs 0.030 and us-east-1b 0.029 (3 % cheaper: the
    rule engine stays), with ``onnx`` as the platform's engine."""
    r = await admin_client.post(f"{API}/engines/onnx/activate")
    assert r.status_code == 200, r.text
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.030), ("us-east-1b", 0.029))
    return a


async def decide(agent: Any) -> dict[str, Any]:
    r = await agent.http.post(f"{API}/agents/{agent.id}/decide")
    assert r.status_code == 200, r.text
    return r.json()


async def test_onnx_engine_without_an_active_model_falls_back_to_rules(tenants, admin_client):
    a = await onnx_agent(tenants, admin_client)
    d = await decide(a)
    assert (d["requested_engine"], d["engine"], d["outcome"]) == ("onnx", "rules", "stay")
    assert "model 'spot' has no active version" in d["fallback_reason"]
    assert d["model_name"] is None and d["model_version"] is None


async def test_onnx_engine_serves_the_active_version_and_records_it(tenants, admin_client):
    a = await onnx_agent(tenants, admin_client)
    assert (await upload(admin_client, "spot", "stay", always(0))).status_code == 201
    assert (await upload(admin_client, "spot", "switch", always(1))).status_code == 201
    for version in ("stay", "switch"):
        await admin_client.post(f"{M}/spot/activate", json={"version": version})
    d = await decide(a)
    assert (d["engine"], d["fallback_reason"], d["outcome"]) == ("onnx", None, "switch")
    assert (d["model_name"], d["model_version"]) == ("spot", "switch")
    assert d["reason"].startswith("model spot switch: switch to pool")
    assert d["expected_saving_per_hour"] == pytest.approx(0.001)
    assert d["details"]["scores"] == {"stay": 0.0, "switch": 1.0, "on-demand": 0.0}
    r = await admin_client.post(f"{M}/spot/fallback")
    assert r.json()["active_version"] == "stay"
    d2 = await decide(a)
    assert (d2["engine"], d2["outcome"], d2["model_version"]) == ("onnx", "stay", "stay")
    stored = (await a.http.get(f"{API}/decisions/{d['id']}")).json()
    assert (stored["model_name"], stored["model_version"]) == ("spot", "switch")
    used = (await admin_client.get(f"{M}/spot/versions/switch/decisions")).json()["items"]
    assert [x["id"] for x in used] == [d["id"]]
    used = (await admin_client.get(f"{M}/spot/versions/stay/decisions")).json()["items"]
    assert [x["id"] for x in used] == [d2["id"]]
    # A deleted version's decisions keep naming it.
    assert (await admin_client.delete(f"{M}/spot/versions/switch")).status_code == 204
    stored = (await a.http.get(f"{API}/decisions/{d['id']}")).json()
    assert (stored["model_name"], stored["model_version"]) == ("spot", "switch")


async def test_onnx_engine_feeds_the_declared_features(tenants, admin_client):
    """``switch`` scores the saving in percent: 3.33 % beats the stay bias of 3 but not 4."""
    a = await onnx_agent(tenants, admin_client)
    for version, stay_bias in (("b3", 3.0), ("b4", 4.0)):
        data = linear_model([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]], [stay_bias, 0.0, -1.0])
        r = await upload(admin_client, "spot", version, data, schema("saving_percent", "is_spot"))
        assert r.status_code == 201, r.text
    await admin_client.post(f"{M}/spot/activate", json={"version": "b3"})
    d = await decide(a)
    assert d["outcome"] == "switch"
    assert d["details"]["scores"]["switch"] == pytest.approx(100 * 0.001 / 0.030, rel=1e-5)
    await admin_client.post(f"{M}/spot/activate", json={"version": "b4"})
    assert (await decide(a))["outcome"] == "stay"


async def test_onnx_engine_answer_the_policy_forbids_falls_back(tenants, admin_client):
    a = await onnx_agent(tenants, admin_client)
    assert (await upload(admin_client, "spot", "od", always(2))).status_code == 201
    await admin_client.post(f"{M}/spot/activate", json={"version": "od"})
    assert (await decide(a))["outcome"] == "on-demand"
    client_id = (await a.http.get(f"{API}/agents/{a.id}")).json()["client_id"]
    r = await admin_client.patch(
        f"{API}/clients/{client_id}", json={"policy": {"allow_on_demand": False}}
    )
    assert r.status_code == 200, r.text
    d = await decide(a)
    assert (d["engine"], d["model_version"]) == ("rules", None)
    assert "on-demand" in d["fallback_reason"]


async def test_sessions_are_cached_per_version(tenants, admin_client):
    from platform_pricing.service import ml_models

    a = await onnx_agent(tenants, admin_client)
    r = await upload(admin_client, "spot", "c1", always(1))
    vid = r.json()["id"]
    await admin_client.post(f"{M}/spot/activate", json={"version": "c1"})
    ml_models._sessions.clear()  # as a fresh process: the first decision loads from the DB
    assert (await decide(a))["model_version"] == "c1"
    assert ml_models.cached_versions() == [vid]
    assert (await decide(a))["model_version"] == "c1"
    assert ml_models.cached_versions() == [vid]


# -- migration and races ----------------------------------------------------------------------


async def _prepare(config_path: Path) -> str:
    """Migrate and create an admin token."""
    async with prepared(config_path) as platform:
        return await platform.token(user=await platform.user("admin", "ml-racer"))


@pytest.fixture(params=["sqlite", "postgresql"])
async def server(request, tmp_path):
    """A ``platformctl serve`` subprocess with pricing on a fresh database."""
    async with fresh_database(request.param, tmp_path) as url:
        config = tmp_path / "plugins.toml"
        config.write_text(
            f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\nlog_level = "WARNING"\n'
            '[plugins]\nenabled = ["pricing"]\n'
        )
        token = await _prepare(config)
        async with served(config) as base:
            yield base, token, url


async def _activation_events(url: str) -> list[dict[str, Any]]:
    """The payloads of ``pricing.ml_model.activated`` in the outbox, in order."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(EventRecord.payload)
                .where(EventRecord.name == "pricing.ml_model.activated")
                .order_by(EventRecord.id)
            )
            return [row.payload for row in rows]
    finally:
        await engine.dispose()


async def test_concurrent_activations_and_fallbacks_leave_one_active(server):
    base, token, url = server
    auth = {"Authorization": f"Bearer {token}"}
    versions = [str(n) for n in range(1, 5)]
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as admin:
        for version in versions:
            r = await admin.post(
                f"{M}/race/versions",
                data={"version": version, "input_schema": schema("saving_percent")},
                files={"artifact": ("m.onnx", always(0), "application/octet-stream")},
            )
            assert r.status_code == 201, r.text
        for _ in range(ROUNDS):
            answers = await asyncio.gather(
                *(admin.post(f"{M}/race/activate", json={"version": v}) for v in versions * 2)
            )
            assert [r.status_code for r in answers] == [200] * len(answers), [
                r.text for r in answers
            ]
            listed = (await admin.get(f"{M}/race/versions")).json()["items"]
            active = [v for v in listed if v["active"]]
            assert len(active) == 1
            last = max(listed, key=lambda v: v["activated_at"])
            assert active[0]["version"] == last["version"]
            assert (await admin.get(f"{M}/race")).json()["active_version"] == last["version"]

            current = last["version"]
            falls = await asyncio.gather(
                *(
                    admin.post(f"{M}/race/fallback", json={"expected_active": current})
                    for _ in range(6)
                )
            )
            won = [r for r in falls if r.status_code == 200]
            assert len(won) == 1, [r.text for r in falls]
            now_active = won[0].json()["active_version"]
            assert now_active != current and won[0].json()["rolled_back"] == current
            lost = [r for r in falls if r.status_code != 200]
            assert all(r.status_code == 409 for r in lost)
            assert {r.json()["current_state"] for r in lost} == {now_active}
            listed = (await admin.get(f"{M}/race/versions")).json()["items"]
            assert [v["version"] for v in listed if v["active"]] == [now_active]
        # One event per change that succeeded, each naming the version the one before left.
        events = await _activation_events(url)
        assert len(events) == ROUNDS * (2 * len(versions) + 1)
        assert events[0]["previous"] is None
        assert all(e["previous"] == p["version"] for p, e in itertools.pairwise(events))
        assert events[-1] == {
            "model": "race",
            "version": now_active,
            "previous": current,
            "how": "fallback",
        }


async def test_migration_matches_the_models_and_downgrades(platform, admin_client):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from platform_pricing.models import PricingBase

    def compare(conn):
        diff = compare_metadata(MigrationContext.configure(conn), PricingBase.metadata)
        return [d for d in diff if "ml_model" in repr(d) or "model_" in repr(d)]

    async with platform.ctx.db.engine.connect() as conn:
        assert await conn.run_sync(compare) == []
    await platform.migrate("pricing", "pricing_0003_agent_settings")
    await platform.migrate("pricing", "heads")
    r = await admin_client.post(
        f"{M}/again/versions",
        data={"version": "1", "input_schema": schema("is_spot")},
        files={"artifact": ("m.onnx", always(0), "application/octet-stream")},
    )
    assert r.status_code == 201, r.text


# -- the engine without a server: safety policy, features ------------------------------------


def bound(action: int) -> Any:
    from platform_pricing import ml

    data = always(action)
    features = [{"name": "saving_percent", "type": "float"}]
    checked, session = ml.check_artifact(data, features, 10_000)
    model = ml.LoadedModel(1, "spot", "v", tuple(features), "X", checked.output_kind, session)
    return ml.BoundOnnxEngine(model)


def inputs_with(**extra: Any) -> Any:
    from datetime import UTC, datetime

    from platform_pricing.engines import DecisionInput, PoolState

    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    pools = extra.pop("pools", None) or (
        PoolState(1, "us-east-1", "us-east-1a", "m5.large", 0.030),
        PoolState(2, "us-east-1", "us-east-1b", "m5.large", 0.020),
        PoolState(3, "us-east-1", "us-east-1c", "m5.large", 0.025),
    )
    return DecisionInput(now, 1, 1, "spot", 0.10, pools, **extra)


def test_engine_switch_sooner_than_the_policy_allows_becomes_stay():
    from datetime import timedelta

    inputs = inputs_with()
    recent = inputs_with(last_switch_at=inputs.now - timedelta(seconds=60))
    assert bound(1).decide(inputs).action == "switch"
    d = bound(1).decide(recent)
    assert d.action == "stay" and "minimum 3600 s" in d.reason
    assert d.details["model_action"] == "switch"
    noticed = inputs_with(
        last_switch_at=inputs.now - timedelta(seconds=60), current_pool_interrupted=True
    )
    assert bound(1).decide(noticed).action == "switch"  # a pending notice overrides it


def test_engine_switch_skips_a_recently_interrupted_or_too_dear_pool():
    from datetime import timedelta

    from platform_pricing.engines import PoolState

    now = inputs_with().now
    pools = (
        PoolState(1, "us-east-1", "us-east-1a", "m5.large", 0.030),
        PoolState(
            2,
            "us-east-1",
            "us-east-1b",
            "m5.large",
            0.020,
            last_interruption_at=now - timedelta(hours=1),
        ),
        PoolState(3, "us-east-1", "us-east-1c", "m5.large", 0.025),
    )
    d = bound(1).decide(inputs_with(pools=pools))
    assert (d.action, d.target_pool_id) == ("switch", 3)
    assert d.expected_saving_per_hour == pytest.approx(0.005)
    only_interrupted = pools[:2]
    with pytest.raises(ValueError, match="no other pool is eligible"):
        bound(1).decide(inputs_with(pools=only_interrupted))


def test_feature_row_follows_the_declared_order():
    from platform_pricing import ml

    inputs = inputs_with()
    row = ml.feature_row(
        inputs,
        [
            {"name": "on_demand_price", "type": "float"},
            {"name": "target_spot_price", "type": "float"},
            {"name": "saving_percent", "type": "float"},
            {"name": "pool_count", "type": "float"},
            {"name": "hour_of_day", "type": "float"},
        ],
    )
    assert row == pytest.approx([0.10, 0.020, 100 * 0.010 / 0.030, 3.0, 12.0])
