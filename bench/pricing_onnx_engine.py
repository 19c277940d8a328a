"""The ``onnx`` decision engine in process: p50/p99 of one decision, beside the rule engine.

No database, no HTTP: a :class:`DecisionInput` with 4 pools, then ``RUNS`` calls of the rule
engine's ``decide`` and of the ``onnx`` engine bound to a small linear model (8 float
features, MatMul + Add, built with ``onnx.helper``): feature row, onnxruntime inference and
output mapping. Also the time to check an upload (``check_artifact``: parse, checker, session,
trial run) and to load a cached session (``warm_session``). The decision budget
(``engine_budget_ms``) is 10 ms by default: the engine should use a small part of it.

Run: ``.venv/bin/python bench/pricing_onnx_engine.py``.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from platform_pricing import ml
from platform_pricing.engines import DecisionInput, PoolState, RuleEngine

RUNS = 2000
FEATURES = [
    "saving_percent",
    "saving_per_hour",
    "current_spot_price",
    "target_spot_price",
    "on_demand_price",
    "current_volatility",
    "seconds_since_switch",
    "hour_of_day",
]


def _model() -> bytes:
    k = len(FEATURES)
    rng = np.random.default_rng(1)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["X", "W"], ["XW"]),
            helper.make_node("Add", ["XW", "B"], ["Y"]),
        ],
        "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 3])],
        [
            numpy_helper.from_array(rng.normal(size=(k, 3)).astype(np.float32), "W"),
            numpy_helper.from_array(np.zeros(3, dtype=np.float32), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _inputs() -> DecisionInput:
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    pools = tuple(
        PoolState(n, "us-east-1", f"us-east-1{z}", "m5.large", p, p * 1.02, p * 1.1, 0.05, None, 0)
        for n, (z, p) in enumerate(zip("abcd", (0.040, 0.036, 0.038, 0.045), strict=True), 1)
    )
    return DecisionInput(now, 1, 1, "spot", 0.096, pools, now - timedelta(hours=3))


def _timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _report(label: str, ms: list[float]) -> None:
    ms = sorted(ms)
    p99 = ms[int(len(ms) * 0.99) - 1]
    print(f"{label:<34} p50 {statistics.median(ms):8.3f} ms   p99 {p99:8.3f} ms   n={len(ms)}")


def main() -> None:
    """Print the figures."""
    data = _model()
    schema = [{"name": n, "type": "float"} for n in FEATURES]
    checks = _timed(lambda: ml.check_artifact(data, schema, 10_000_000), 20)
    _report(f"upload check ({len(data)} bytes)", checks)
    _report("load + warm a session", _timed(lambda: ml.warm_session(data, schema, "X"), 20))
    checked, session = ml.check_artifact(data, schema, 10_000_000)
    loaded = ml.LoadedModel(1, "bench", "1", tuple(schema), "X", checked.output_kind, session)
    engine = ml.BoundOnnxEngine(loaded)
    inputs = _inputs()
    rules = RuleEngine()
    for _ in range(50):
        engine.decide(inputs)
    _report("rules engine decide", _timed(lambda: rules.decide(inputs), RUNS))
    _report("onnx engine decide (8 features)", _timed(lambda: engine.decide(inputs), RUNS))
    _report("  of which the feature row", _timed(lambda: ml.feature_row(inputs, schema), RUNS))


if __name__ == "__main__":
    main()
