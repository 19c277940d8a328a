"""ML models as data: ONNX artifact checks, the feature catalogue and the ``onnx`` engine.

Pure Python over ``onnx`` and ``onnxruntime`` (no database, no web framework). A model is an
ONNX graph, never code: :func:`check_artifact` refuses pickles (and joblib, zip and compressed
files, which wrap pickles), anything ``onnx`` cannot parse or check, graphs that would read
external files, and graphs whose input or output does not fit the declared input schema.

The contract of a model (see the plugin README):

- one input, a rank-2 tensor ``[batch, k]`` (``batch`` symbolic or 1) where ``k`` is the number
  of declared features, of the features' one type (``float``, ``double`` or ``int64``); the
  engine feeds one row, the features in their declared order (:data:`FEATURES`);
- the first output is either three scores per row (``float``/``double``, ``[batch, 3]`` or
  ``[3]``: stay, switch, on-demand; the highest wins) or a label per row (``int64``:
  0 stay, 1 switch, 2 on-demand).

A ``switch`` goes to the cheapest *eligible* pool other than the current one (ties: lowest
id): priced, not interrupted within the client's ``interruption_cooldown_seconds``, within its
``max_price_ratio`` ceiling. The model judges savings; the client's safety policy still holds:
a move sooner than ``min_seconds_between_switches`` after the last switch becomes ``stay``
(unless an interruption notice is pending), and ``on-demand`` when the policy forbids it is
refused (the fallback engine decides).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from platform_pricing.engines import ACTIONS, EPSILON, Decision, DecisionInput, PoolState

if TYPE_CHECKING:
    import onnxruntime

__all__ = [
    "FEATURES",
    "FEATURE_TYPES",
    "ONNX_ENGINE",
    "ArtifactError",
    "BoundOnnxEngine",
    "CheckedModel",
    "Feature",
    "LoadedModel",
    "OnnxEngine",
    "check_artifact",
    "feature_row",
    "load_session",
    "parse_input_schema",
    "warm_session",
]

ONNX_ENGINE = "onnx"
FeatureType = Literal["float", "double", "int64"]
FEATURE_TYPES: dict[str, str] = {"float": "float32", "double": "float64", "int64": "int64"}
"""Declared feature type -> numpy dtype of the model's input tensor."""
_ONNX_INPUT_TYPES = {"float": 1, "double": 11, "int64": 7}  # onnx.TensorProto element types
_SCORE_TYPES = {"tensor(float)", "tensor(double)"}
_LABEL_TYPES = {"tensor(int64)", "tensor(int32)"}
MAX_FEATURES = 256
NO_SWITCH_SECONDS = 30 * 86400.0
"""``seconds_since_switch`` of an instance never switched (and its cap)."""

# Magic numbers of formats that are (or wrap) Python pickles: refused by name.
_REFUSED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a zip archive (joblib, PyTorch .pt, .npz, skops: pickles or code inside)"),
    (b"\x1f\x8b", "a gzip file (compressed joblib pickle)"),
    (b"BZh", "a bzip2 file (compressed joblib pickle)"),
    (b"\xfd7zXZ\x00", "an xz file (compressed joblib pickle)"),
    (b"\x28\xb5\x2f\xfd", "a zstandard file (compressed joblib pickle)"),
    (b"ZF", "a joblib zlib file"),
    (b"\x93NUMPY", "a NumPy .npy file (may hold pickled objects)"),
)


class ArtifactError(ValueError):
    """The artifact or its declared schema is refused; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# -- features ---------------------------------------------------------------------------------


def _eligible(inputs: DecisionInput, pool: PoolState) -> bool:
    """Whether the client's safety policy lets ``pool`` be a target: priced, not interrupted
    within ``interruption_cooldown_seconds``, and within the ``max_price_ratio`` ceiling."""
    if pool.spot_price is None:
        return False
    policy = inputs.policy
    if pool.last_interruption_at is not None:
        ago = (inputs.now - pool.last_interruption_at).total_seconds()
        if ago < policy.interruption_cooldown_seconds:
            return False
    return pool.spot_price <= inputs.on_demand_price * policy.max_price_ratio + EPSILON


def _best(inputs: DecisionInput) -> PoolState | None:
    """The switch target: the cheapest eligible pool other than the current one."""
    current = inputs.current_pool_id if inputs.current_lifecycle == "spot" else None
    priced = [p for p in inputs.pools if p.pool_id != current and _eligible(inputs, p)]
    return min(priced, key=lambda p: (p.spot_price or 0.0, p.pool_id), default=None)


def _too_soon(inputs: DecisionInput) -> float | None:
    """Seconds since the last switch when a move now would break
    ``min_seconds_between_switches`` (a pending interruption notice overrides it), else None."""
    if inputs.current_pool_interrupted or inputs.last_switch_at is None:
        return None
    ago = (inputs.now - inputs.last_switch_at).total_seconds()
    return ago if ago < inputs.policy.min_seconds_between_switches else None


def _current_cost(inputs: DecisionInput) -> float:
    pool = inputs.current_pool
    if pool is None or pool.spot_price is None:
        return inputs.on_demand_price
    return pool.spot_price


def _price_or_od(inputs: DecisionInput, pool: PoolState | None, attr: str) -> float:
    value = getattr(pool, attr) if pool is not None else None
    return inputs.on_demand_price if value is None else float(value)


def _saving(inputs: DecisionInput) -> float:
    best = _best(inputs)
    return 0.0 if best is None else _current_cost(inputs) - float(best.spot_price or 0.0)


def _since_switch(inputs: DecisionInput) -> float:
    if inputs.last_switch_at is None:
        return NO_SWITCH_SECONDS
    return min(max((inputs.now - inputs.last_switch_at).total_seconds(), 0.0), NO_SWITCH_SECONDS)


def _current(attr: str) -> Callable[[DecisionInput], float]:
    return lambda i: _price_or_od(i, i.current_pool, attr)


def _target_number(inputs: DecisionInput, attr: str) -> float:
    best = _best(inputs)
    value = getattr(best, attr) if best is not None else None
    return float(value or 0.0)


def _target(attr: str) -> Callable[[DecisionInput], float]:
    return lambda i: _price_or_od(i, _best(i), attr)


@dataclass(frozen=True)
class Feature:
    """A value the engine can feed a model, computed from a decision's inputs."""

    name: str
    description: str
    compute: Callable[[DecisionInput], float]


FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature("on_demand_price", "on-demand price per hour", lambda i: i.on_demand_price),
        Feature(
            "is_spot", "1 on spot, 0 on on-demand", lambda i: float(i.current_lifecycle == "spot")
        ),
        Feature(
            "current_spot_price",
            "latest price of the current pool (on-demand price when on-demand or unpriced)",
            _current("spot_price"),
        ),
        Feature(
            "current_recent_avg",
            "recent average price of the current pool (else on-demand)",
            _current("recent_avg"),
        ),
        Feature(
            "current_recent_max",
            "recent maximum price of the current pool (else on-demand)",
            _current("recent_max"),
        ),
        Feature(
            "current_volatility",
            "stddev / average of the current pool's recent prices (0 when unknown)",
            lambda i: float((i.current_pool and i.current_pool.volatility) or 0.0),
        ),
        Feature(
            "current_interruptions_recent",
            "the client's recent interruptions of the current pool",
            lambda i: float(i.current_pool.interruptions_recent if i.current_pool else 0),
        ),
        Feature(
            "current_interrupted",
            "1 when an interruption notice is pending, else 0",
            lambda i: float(i.current_pool_interrupted),
        ),
        Feature(
            "target_spot_price",
            "latest price of the switch target (the cheapest eligible other pool; else on-demand)",
            _target("spot_price"),
        ),
        Feature(
            "target_recent_avg",
            "recent average price of the switch target (else on-demand)",
            _target("recent_avg"),
        ),
        Feature(
            "target_volatility",
            "volatility of the switch target (0 when unknown)",
            lambda i: _target_number(i, "volatility"),
        ),
        Feature(
            "target_interruptions_recent",
            "the client's recent interruptions of the switch target",
            lambda i: _target_number(i, "interruptions_recent"),
        ),
        Feature(
            "saving_per_hour",
            "current hourly cost minus the target's price (0 without a target)",
            _saving,
        ),
        Feature(
            "saving_percent",
            "saving_per_hour as a percentage of the current hourly cost",
            lambda i: 100.0 * _saving(i) / _current_cost(i) if _current_cost(i) else 0.0,
        ),
        Feature(
            "seconds_since_switch",
            f"seconds since the last switch (at most {NO_SWITCH_SECONDS:.0f}, also when never)",
            _since_switch,
        ),
        Feature("pool_count", "number of candidate pools", lambda i: float(len(i.pools))),
        Feature("hour_of_day", "UTC hour of the decision, 0-23", lambda i: float(i.now.hour)),
        Feature(
            "day_of_week", "UTC weekday of the decision, 0 Monday", lambda i: float(i.now.weekday())
        ),
    )
}


def parse_input_schema(value: Any) -> list[dict[str, str]]:
    """A declared input schema as ``[{"name", "type"}]``; :class:`ArtifactError` naming
    ``input_schema`` when it is not a non-empty list of known, distinct features of one type.

    Accepts the list itself or ``{"features": [...]}``.
    """
    if isinstance(value, dict) and set(value) == {"features"}:
        value = value["features"]
    if not isinstance(value, list) or not value:
        raise ArtifactError(
            "input_schema", "must be a non-empty JSON list of {name, type} features"
        )
    if len(value) > MAX_FEATURES:
        raise ArtifactError("input_schema", f"at most {MAX_FEATURES} features")
    out: list[dict[str, str]] = []
    for n, item in enumerate(value):
        if not isinstance(item, dict) or set(item) - {"name", "type"} or "name" not in item:
            raise ArtifactError(
                "input_schema", f"feature {n}: must be an object with name and type only"
            )
        name, kind = item["name"], item.get("type", "float")
        if not isinstance(name, str) or name not in FEATURES:
            raise ArtifactError(
                "input_schema",
                f"feature {n}: unknown feature {str(name)[:64]!r} (known: {', '.join(FEATURES)})",
            )
        if kind not in FEATURE_TYPES:
            raise ArtifactError(
                "input_schema",
                f"feature {n} ({name}): type must be one of {', '.join(FEATURE_TYPES)}",
            )
        if any(f["name"] == name for f in out):
            raise ArtifactError("input_schema", f"feature {n}: {name} is declared twice")
        out.append({"name": name, "type": kind})
    kinds = {f["type"] for f in out}
    if len(kinds) > 1:
        raise ArtifactError(
            "input_schema",
            f"all features must share one type (the model has one input tensor), got "
            f"{', '.join(sorted(kinds))}",
        )
    return out


def feature_row(inputs: DecisionInput, schema: Sequence[dict[str, str]]) -> list[float]:
    """The declared features of ``inputs``, in order (ValueError for a non-finite one)."""
    row = []
    for item in schema:
        value = float(FEATURES[item["name"]].compute(inputs))
        if not math.isfinite(value):
            raise ValueError(f"feature {item['name']} is not finite")
        row.append(value)
    return row


# -- artifacts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedModel:
    """An accepted artifact: its digest, size and how its output is read."""

    sha256: str
    size: int
    output_kind: Literal["scores", "label"]
    input_name: str
    opset: int


def _refuse_non_onnx(data: bytes) -> None:
    if not data:
        raise ArtifactError("artifact", "is empty")
    if data[:1] == b"\x80" and len(data) > 1 and data[1] <= 5:
        raise ArtifactError(
            "artifact",
            f"is a Python pickle (protocol {data[1]}): refused, because loading a pickle runs "
            "arbitrary code; export the model to ONNX (skl2onnx, torch.onnx, onnxmltools)",
        )
    for magic, what in _REFUSED_MAGIC:
        if data.startswith(magic):
            raise ArtifactError(
                "artifact",
                f"is {what}: refused, only ONNX models are accepted (models are data, never "
                "code); export the model to ONNX",
            )


def load_session(data: bytes) -> onnxruntime.InferenceSession:
    """An onnxruntime session of ``data`` on the CPU, one intra-op thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def warm_session(data: bytes, schema: Sequence[dict[str, str]], input_name: str) -> Any:
    """A session of an accepted artifact, after one inference on a zero row (the first run
    allocates its buffers: it must not count against a decision's time budget)."""
    session = load_session(data)
    _infer(session, input_name, [0.0] * len(schema), _dtype(schema))
    return session


def _shape(arg: Any) -> list[int | str | None]:
    return [d if isinstance(d, int) else (d or None) for d in (arg.shape or [])]


def _check_io(session: Any, schema: Sequence[dict[str, str]]) -> tuple[str, str]:
    """The input's name and the output kind; ArtifactError when they disagree with ``schema``."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ArtifactError(
            "artifact",
            f"must have exactly one input tensor, has {len(inputs)} "
            f"({', '.join(i.name for i in inputs)})",
        )
    arg = inputs[0]
    kind = schema[0]["type"]
    if arg.type != f"tensor({kind})":
        raise ArtifactError(
            "input_schema",
            f"declares {kind} features but the model's input {arg.name!r} is {arg.type}",
        )
    shape = _shape(arg)
    if len(shape) != 2 or (isinstance(shape[0], int) and shape[0] != 1):
        raise ArtifactError(
            "artifact",
            f"input {arg.name!r} must have shape [batch, {len(schema)}] (batch symbolic or 1), "
            f"has {shape}",
        )
    if shape[1] != len(schema):
        raise ArtifactError(
            "input_schema",
            f"declares {len(schema)} features but the model's input {arg.name!r} has shape {shape}",
        )
    out = session.get_outputs()[0]
    if out.type in _SCORE_TYPES:
        output_kind = "scores"
    elif out.type in _LABEL_TYPES:
        output_kind = "label"
    else:
        raise ArtifactError(
            "artifact",
            f"first output {out.name!r} is {out.type}: must be float/double scores "
            "(stay, switch, on-demand) or an int64 label",
        )
    return arg.name, output_kind


def _action_of(output: Any, kind: str) -> tuple[str, list[float] | None]:
    """The action an output row means, and the scores (None for a label)."""
    import numpy as np

    values = np.asarray(output)
    if kind == "label":
        flat = values.reshape(-1)
        if flat.size != 1:
            raise ValueError(f"label output has {flat.size} values, expected 1")
        label = int(flat[0])
        if not 0 <= label < len(ACTIONS):
            raise ValueError(f"label {label} is not 0 (stay), 1 (switch) or 2 (on-demand)")
        return ACTIONS[label], None
    flat = values.astype("float64").reshape(-1)
    if flat.size != len(ACTIONS):
        raise ValueError(f"score output has {flat.size} values, expected 3")
    scores = [float(v) for v in flat]
    if not all(math.isfinite(v) for v in scores):
        raise ValueError("score output is not finite")
    return ACTIONS[max(range(len(ACTIONS)), key=lambda n: (scores[n], -n))], scores


def _infer(session: Any, input_name: str, row: Sequence[float], dtype: str) -> Any:
    import numpy as np

    batch = np.asarray([row], dtype=dtype)
    return session.run(None, {input_name: batch})[0]


def check_artifact(
    data: bytes, schema: Sequence[dict[str, str]], max_bytes: int
) -> tuple[CheckedModel, Any]:
    """Check an uploaded model against its parsed ``schema`` (see the module docstring).

    Returns what was learnt and the ready onnxruntime session; raises :class:`ArtifactError`
    naming ``artifact`` or ``input_schema`` otherwise. CPU-bound: run it in a thread.
    """
    if len(data) > max_bytes:
        raise ArtifactError("artifact", f"is {len(data)} bytes, over the limit of {max_bytes}")
    _refuse_non_onnx(data)
    import onnx

    try:
        model = onnx.load_from_string(data)
    except Exception as exc:
        raise ArtifactError("artifact", f"is not an ONNX model ({type(exc).__name__})") from exc
    for tensor in _initializers(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
            raise ArtifactError(
                "artifact",
                f"tensor {tensor.name[:64]!r} refers to external data: refused (it would "
                "read files on the server); embed the weights in the model",
            )
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise ArtifactError(
            "artifact", f"is not a valid ONNX model: {str(exc).splitlines()[0][:300]}"
        ) from exc
    try:
        session = load_session(data)
    except Exception as exc:
        raise ArtifactError(
            "artifact", f"onnxruntime cannot load it: {str(exc).splitlines()[0][:300]}"
        ) from exc
    input_name, kind = _check_io(session, schema)
    try:  # a trial run: the output must be readable as a decision
        output = _infer(session, input_name, [0.0] * len(schema), _dtype(schema))
        _action_of(output, kind)
    except Exception as exc:
        raise ArtifactError(
            "artifact", f"a trial inference failed: {str(exc).splitlines()[0][:300]}"
        ) from exc
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    checked = CheckedModel(
        hashlib.sha256(data).hexdigest(),
        len(data),
        "label" if kind == "label" else "scores",
        input_name,
        opset,
    )
    return checked, session


def _initializers(graph: Any) -> list[Any]:
    """Every initializer of ``graph`` and of the graphs nested in its nodes' attributes."""
    found = list(graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                found.extend(_initializers(sub))
    return found


def _dtype(schema: Sequence[dict[str, str]]) -> str:
    return FEATURE_TYPES[schema[0]["type"]]


# -- the engine -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedModel:
    """An active model version ready to serve: its identity, schema and session."""

    version_id: int
    name: str
    version: str
    input_schema: tuple[dict[str, str], ...]
    input_name: str
    output_kind: str
    session: Any

    def predict(self, inputs: DecisionInput) -> tuple[str, list[float] | None]:
        """The action the model picks for ``inputs`` (and its scores, for a score output)."""
        row = feature_row(inputs, self.input_schema)
        output = _infer(self.session, self.input_name, row, _dtype(self.input_schema))
        return _action_of(output, self.output_kind)


class OnnxEngine:
    """The ``onnx`` engine: serves the active version of the model named in the settings.

    As collected from the hook it has no model: the decision service binds it to the active
    version for each decision (:class:`BoundOnnxEngine`); deciding unbound raises, so the
    fallback engine decides and the reason is recorded.
    """

    name = ONNX_ENGINE
    description = "An uploaded ONNX model (the active version of [plugins.pricing] onnx_model)."

    def decide(self, inputs: DecisionInput) -> Decision:
        """Refuses: only a bound engine decides."""
        raise LookupError("no model is bound to the onnx engine")


class BoundOnnxEngine:
    """The ``onnx`` engine bound to one model version, or to why none is served."""

    name = ONNX_ENGINE
    description = OnnxEngine.description

    def __init__(self, model: LoadedModel | None, missing: str = "") -> None:
        self.model = model
        self.missing = missing

    def decide(self, inputs: DecisionInput) -> Decision:
        """The model's action as a decision; raises when no model is served or it fails."""
        if self.model is None:
            raise LookupError(self.missing or "no active model")
        action, scores = self.model.predict(inputs)
        label = f"model {self.model.name} {self.model.version}"
        details: dict[str, Any] = {
            "rule": "model",
            "model": {"name": self.model.name, "version": self.model.version},
        }
        if scores is not None:
            details["scores"] = dict(zip(ACTIONS, scores, strict=True))
        current = _current_cost(inputs)
        wait = _too_soon(inputs) if action != "stay" else None
        if wait is not None:
            details["model_action"] = action
            minimum = inputs.policy.min_seconds_between_switches
            return Decision(
                "stay",
                reason=f"{label} chose {action}, but the last switch was {wait:.0f} s ago "
                f"(minimum {minimum} s)",
                details=details,
            )
        if action == "switch":
            best = _best(inputs)
            if best is None:
                raise ValueError(f"{label} chose switch, but no other pool is eligible")
            saving = current - float(best.spot_price or 0.0)
            return Decision(
                "switch",
                best.pool_id,
                round(saving, 9),
                f"{label}: switch to pool {best.pool_id} ({best.label})",
                details,
            )
        if action == "on-demand":
            saving = current - inputs.on_demand_price
            return Decision("on-demand", None, round(saving, 9), f"{label}: on-demand", details)
        return Decision("stay", reason=f"{label}: stay", details=details)
