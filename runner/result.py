"""result.json: the one definition of the file a finished run writes and `summarize` reads.

The model is strict (no coercion, no unknown or absent keys). Pydantic's strict mode still accepts a JSON
integer where a number is expected and stores it as a float (1800 -> 1800.0); booleans are never numbers.
NaN and infinities are kept as they are: the reader decides what a non-finite metric means.
"""

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, model_validator

from runner import layout

# A run collapsed when its samples stayed near the initial noise: FID above this fraction of fid_init, the FID of
# the uniform-noise buffer sampling starts from (docs/STABILITY.md). A collapsed run is flagged, never dropped.
COLLAPSE_FRACTION = 0.5
COLLAPSE_RULE = f"fid > {COLLAPSE_FRACTION} x fid_init"  # how messages and tables state it


def is_collapsed(fid: float | None, fid_init: float | None) -> bool | None:
    """fid > COLLAPSE_FRACTION x fid_init; None when either is missing, not a number or not finite."""
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (fid, fid_init))
    if not numbers or not (math.isfinite(fid) and math.isfinite(fid_init)):
        return None
    return fid > COLLAPSE_FRACTION * fid_init


# The encoder collapsed when its linear probe on z is not above the untrained encoder's (the same method and seed,
# before its first step), or when the method's loss over its last steps is at least this fraction of its chance
# level (docs/ENCODERS.md). Flagged and counted, never dropped.
ENCODER_CHANCE_FRACTION = 0.98
ENCODER_COLLAPSE_RULE = (
    f"probe on z <= the untrained encoder's, or loss over the last steps >= {ENCODER_CHANCE_FRACTION:g} x chance"
)


def is_encoder_collapsed(
    probe_z: float | None, untrained_probe_z: float | None, final_loss: float | None, chance: float | None
) -> bool | None:
    """The encoder collapse rule (ENCODER_COLLAPSE_RULE); None when neither part can be judged."""
    judged = []
    if _finite(probe_z) and _finite(untrained_probe_z):
        judged.append(probe_z <= untrained_probe_z)
    if _finite(final_loss) and _finite(chance):
        judged.append(final_loss >= ENCODER_CHANCE_FRACTION * chance)
    return any(judged) if judged else None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Strict(BaseModel):
    """No unknown keys, no type coercion, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class AurocScores(Strict):
    """The AUROC of both scores against one OOD set; None where the score does not exist (no encoder)."""

    marginal: float | None
    joint: float | None


class EncoderHealth(Strict):
    """How well the run's EMA encoder learned (docs/ENCODERS.md): linear-probe accuracies on its features h and
    latents z (test split; None without labels), the mean cosine between two images' z, the same for the
    untrained encoder of this method and seed and the probe on raw pixels, the method's loss over its last steps
    and its chance level (None where the method has none), and the collapse flag."""

    probe_h: float | None
    probe_z: float | None
    mean_cos_z: float
    untrained_probe_h: float | None
    untrained_probe_z: float | None
    untrained_mean_cos_z: float
    pixel_probe: float | None
    final_loss: float | None
    chance_loss: float | None
    collapsed: bool | None


class RunResult(Strict):
    """A finished run: what it was, how long it took, and its FID and OOD AUROCs."""

    experiment: str
    profile: str
    seed: int
    smoke: bool = False  # a smoke run (--smoke): its run id says so, and summarize keeps it apart
    point: dict[str, Any] = {}  # the settings that differ from the experiment's own config (runner.layout)
    run_id: str
    config_hash: str
    iterations: int
    wall_s: float
    device: str
    torch: str
    crl: str
    norm_direction_split: bool
    use_generated_negatives: bool | Literal["n/a"]
    fid: float | None
    fid_features: str
    fid_init: float | None
    fid_protocol: str
    collapsed: bool | None  # is_collapsed(fid, fid_init); derived from them in files written before the flag
    auroc: dict[str, AurocScores]
    encoder: EncoderHealth | None = None  # None: no encoder (the plain EBM), or a result written before the block
    notes: list[str]

    @model_validator(mode="before")
    @classmethod
    def _derive_collapsed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "collapsed" not in data and "fid" in data and "fid_init" in data:
            return {**data, "collapsed": is_collapsed(data["fid"], data["fid_init"])}
        return data

    @model_validator(mode="after")
    def _run_id_matches(self, info: ValidationInfo) -> "RunResult":
        expected = layout.run_id(self.experiment, self.profile, self.seed, layout.variant_of(self.smoke, self.point))
        directory = (info.context or {}).get("run_dir")
        if self.run_id != expected or directory not in (None, expected):
            where = "" if directory is None else f" and its directory {directory!r}"
            raise ValueError(f"run_id {self.run_id!r} does not match {expected!r}{where}")
        return self

    def to_json(self) -> bytes:
        """The file's bytes: sorted keys, two-space indent, a final newline (NaN is written as NaN)."""
        return (json.dumps(self.model_dump(), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, run_dir: str | None = None) -> "RunResult":
        """Parse a result.json (found in directory run_dir, when given); ValueError with a one-line reason."""
        try:
            raw = json.loads(data)
        except ValueError as err:
            raise ValueError(f"not valid JSON ({err})") from None
        if not isinstance(raw, dict):
            raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
        try:
            return cls.model_validate(raw, context={"run_dir": run_dir})
        except ValidationError as err:
            raise ValueError(_reason(raw, err)) from None


def _reason(raw: dict[str, Any], err: ValidationError) -> str:
    """The first problem pydantic found, in one line, with the JSON path of the offending value."""
    errors = err.errors(include_url=False)
    top = [e for e in errors if len(e["loc"]) == 1]
    missing = [str(e["loc"][0]) for e in top if e["type"] == "missing"]
    extra = [str(e["loc"][0]) for e in top if e["type"] == "extra_forbidden"]
    if missing or extra:
        parts = [f"missing keys {', '.join(missing)}"] if missing else []
        parts += [f"unexpected keys {', '.join(extra)}"] if extra else []
        return f"{'; '.join(parts)} (not a result.json of this runner?)"
    first = errors[0]
    if first["type"] == "value_error":
        return str(first["ctx"]["error"])
    if first["type"] in ("missing", "extra_forbidden"):
        what = "missing" if first["type"] == "missing" else "unexpected key"
        return f"{'.'.join(str(part) for part in first['loc'])}: {what}"
    path = _path(raw, first["loc"])
    # A union (true/false or "n/a") fails once per member; those errors share the path and are one problem.
    expected = dict.fromkeys(_expected(e) for e in errors if _path(raw, e["loc"]) == path)
    got = json.dumps(first["input"])[:40]
    return f"{'.'.join(path)}: expected {' or '.join(expected)}, got {got}".replace("\n", " ")


def _path(raw: Any, loc: tuple[int | str, ...]) -> tuple[str, ...]:
    """The part of a pydantic error location that indexes into the document (drops union member tags)."""
    path, node = [], raw
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
        path.append(str(part))
    return tuple(path)


def _expected(error: Any) -> str:
    if error["type"] in ("model_type", "dict_type"):
        return "an object"
    return error["msg"].removeprefix("Input should be ")


def result_line(result: dict[str, Any]) -> str:
    """`<run_id>: fid F [COLLAPSED] (fid_init ..., features), encoder: probe z P (untrained U), cos z C, loss L
    (chance K) [ENCODER COLLAPSED], N iterations, T s on DEVICE`."""
    fid = "missing" if result["fid"] is None else f"{result['fid']:.3f}"
    fid_init = "missing" if result["fid_init"] is None else f"{result['fid_init']:.3f}"
    collapsed = f" COLLAPSED ({COLLAPSE_RULE}: the samples stayed near noise)" if result.get("collapsed") else ""
    smoke = " (smoke run: not a result)" if result.get("smoke") else ""
    encoder = result.get("encoder")
    health = "" if not isinstance(encoder, dict) else f", {encoder_text(encoder)}"
    return (
        f"{result['run_id']}: fid {fid}{collapsed} (fid_init {fid_init}, {result['fid_features']} features)"
        f"{health}, {result['iterations']} iterations, {result['wall_s']:.0f} s on {result['device']}{smoke}"
    )


def encoder_text(encoder: dict[str, Any]) -> str:
    """`encoder: probe z 0.931 (untrained 0.794), cos z 0.012, loss 3.18 (chance 5.25)` [ENCODER COLLAPSED]."""

    def number(key: str, digits: str = ".3f") -> str:
        value = encoder.get(key)
        return "n/a" if not _finite(value) else format(value, digits)

    loss = f", loss {number('final_loss', '.3g')}"
    if _finite(encoder.get("chance_loss")):
        loss += f" (chance {number('chance_loss', '.3g')})"
    flag = f" ENCODER COLLAPSED ({ENCODER_COLLAPSE_RULE})" if encoder.get("collapsed") else ""
    return (
        f"encoder: probe z {number('probe_z')} (untrained {number('untrained_probe_z')}), "
        f"cos z {number('mean_cos_z')}{loss}{flag}"
    )
