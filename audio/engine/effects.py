"""Effects: document `type`s mapped one-to-one onto pedalboard plugins.

Parameter names carry their unit (`_db`, `_hz`, `_ms`) or are plain ratios and
fractions (`ratio`, `mix`, `feedback`, ...). Every parameter is range-checked
here, so a plugin never sees a value pedalboard would clamp silently or reject
mid-render.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pedalboard

__all__ = [
    "EFFECT_TYPES",
    "TIME_BASED",
    "Effect",
    "EffectError",
    "build_chain",
    "effect_defaults",
    "longest_delay_s",
    "parse_effect",
]


class EffectError(ValueError):
    """An effect in the document is unknown or has a bad parameter."""


@dataclass(frozen=True)
class Effect:
    type: str
    params: Mapping[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Param:
    default: float | str
    lo: float = 0.0
    hi: float = 1.0
    # Name of the pedalboard constructor argument and how to convert to it.
    arg: str = ""
    scale: float = 1.0
    choices: tuple[str, ...] = ()
    below_nyquist: bool = False


@dataclass(frozen=True)
class _Spec:
    plugin: Callable[..., pedalboard.Plugin]
    params: Mapping[str, _Param]


def _hz(default: float, arg: str = "cutoff_frequency_hz") -> _Param:
    return _Param(default, 10.0, 40000.0, arg, below_nyquist=True)


def _db(default: float, lo: float, hi: float, arg: str) -> _Param:
    return _Param(default, lo, hi, arg)


def _ms(default: float, lo: float, hi: float, arg: str, scale: float = 1.0) -> _Param:
    return _Param(default, lo, hi, arg, scale)


_Q = _Param(0.7071067811865476, 0.1, 20.0, "q")
_MIX = _Param(0.5, 0.0, 1.0, "mix")

_SPECS: dict[str, _Spec] = {
    "gain": _Spec(pedalboard.Gain, {"gain_db": _db(0.0, -60.0, 24.0, "gain_db")}),
    "highpass": _Spec(pedalboard.HighpassFilter, {"cutoff_hz": _hz(80.0)}),
    "lowpass": _Spec(pedalboard.LowpassFilter, {"cutoff_hz": _hz(12000.0)}),
    "low_shelf": _Spec(
        pedalboard.LowShelfFilter,
        {"cutoff_hz": _hz(200.0), "gain_db": _db(0.0, -24.0, 24.0, "gain_db"), "q": _Q},
    ),
    "high_shelf": _Spec(
        pedalboard.HighShelfFilter,
        {"cutoff_hz": _hz(6000.0), "gain_db": _db(0.0, -24.0, 24.0, "gain_db"), "q": _Q},
    ),
    "peak": _Spec(
        pedalboard.PeakFilter,
        {"cutoff_hz": _hz(1000.0), "gain_db": _db(0.0, -24.0, 24.0, "gain_db"), "q": _Q},
    ),
    "compressor": _Spec(
        pedalboard.Compressor,
        {
            "threshold_db": _db(0.0, -80.0, 0.0, "threshold_db"),
            "ratio": _Param(1.0, 1.0, 100.0, "ratio"),
            "attack_ms": _ms(1.0, 0.01, 1000.0, "attack_ms"),
            "release_ms": _ms(100.0, 1.0, 5000.0, "release_ms"),
        },
    ),
    "limiter": _Spec(
        pedalboard.Limiter,
        {
            "threshold_db": _db(-1.0, -60.0, 0.0, "threshold_db"),
            "release_ms": _ms(100.0, 1.0, 5000.0, "release_ms"),
        },
    ),
    "noise_gate": _Spec(
        pedalboard.NoiseGate,
        {
            "threshold_db": _db(-100.0, -120.0, 0.0, "threshold_db"),
            "ratio": _Param(10.0, 1.0, 100.0, "ratio"),
            "attack_ms": _ms(1.0, 0.01, 1000.0, "attack_ms"),
            "release_ms": _ms(100.0, 1.0, 5000.0, "release_ms"),
        },
    ),
    "reverb": _Spec(
        pedalboard.Reverb,
        {
            "room_size": _Param(0.5, 0.0, 1.0, "room_size"),
            "damping": _Param(0.5, 0.0, 1.0, "damping"),
            "wet_level": _Param(0.33, 0.0, 1.0, "wet_level"),
            "dry_level": _Param(0.4, 0.0, 1.0, "dry_level"),
            "width": _Param(1.0, 0.0, 1.0, "width"),
        },
    ),
    "delay": _Spec(
        pedalboard.Delay,
        {
            "delay_ms": _ms(500.0, 0.0, 5000.0, "delay_seconds", scale=0.001),
            # Below 1 so the echoes die away and the tail rule terminates.
            "feedback": _Param(0.0, 0.0, 0.99, "feedback"),
            "mix": _MIX,
        },
    ),
    "chorus": _Spec(
        pedalboard.Chorus,
        {
            "rate_hz": _Param(1.0, 0.0, 100.0, "rate_hz"),
            "depth": _Param(0.25, 0.0, 1.0, "depth"),
            "centre_delay_ms": _ms(7.0, 1.0, 100.0, "centre_delay_ms"),
            "feedback": _Param(0.0, -0.95, 0.95, "feedback"),
            "mix": _MIX,
        },
    ),
    "phaser": _Spec(
        pedalboard.Phaser,
        {
            "rate_hz": _Param(1.0, 0.0, 100.0, "rate_hz"),
            "depth": _Param(0.5, 0.0, 1.0, "depth"),
            "centre_frequency_hz": _hz(1300.0, "centre_frequency_hz"),
            "feedback": _Param(0.0, -0.95, 0.95, "feedback"),
            "mix": _MIX,
        },
    ),
    "distortion": _Spec(pedalboard.Distortion, {"drive_db": _db(25.0, 0.0, 100.0, "drive_db")}),
    "bitcrush": _Spec(pedalboard.Bitcrush, {"bit_depth": _Param(8.0, 1.0, 32.0, "bit_depth")}),
    "clipping": _Spec(pedalboard.Clipping, {"threshold_db": _db(-6.0, -60.0, 0.0, "threshold_db")}),
    "ladder_filter": _Spec(
        pedalboard.LadderFilter,
        {
            "mode": _Param(
                "lpf12",
                arg="mode",
                choices=("lpf12", "hpf12", "bpf12", "lpf24", "hpf24", "bpf24"),
            ),
            "cutoff_hz": _hz(200.0, "cutoff_hz"),
            "resonance": _Param(0.0, 0.0, 1.0, "resonance"),
            "drive": _Param(1.0, 1.0, 100.0, "drive"),
        },
    ),
}

EFFECT_TYPES: tuple[str, ...] = tuple(sorted(_SPECS))
# Effects whose output outlives their input: the render keeps running after the
# last clip until their tail decays (ARCHITECTURE.md §4, output length).
TIME_BASED = frozenset({"reverb", "delay"})


def parse_effect(value: Any, path: str, sample_rate: int) -> Effect:
    """Validate one effect object; `path` prefixes every error message."""
    if not isinstance(value, Mapping):
        raise EffectError(f"{path}: must be an object")
    kind = value.get("type")
    if not isinstance(kind, str):
        raise EffectError(f"{path}.type: required, one of {', '.join(EFFECT_TYPES)}")
    spec = _SPECS.get(kind)
    if spec is None:
        raise EffectError(
            f"{path}.type: unknown effect type {kind!r} (known: {', '.join(EFFECT_TYPES)})"
        )
    params: dict[str, float | str] = {}
    for name, raw in value.items():
        if name == "type":
            continue
        param = spec.params.get(name)
        where = f"{path}.{name}"
        if param is None:
            known = ", ".join(sorted(spec.params))
            raise EffectError(f"{where}: unknown parameter {name!r} for {kind} (known: {known})")
        if param.choices:
            if raw not in param.choices:
                raise EffectError(f"{where}: must be one of {', '.join(param.choices)}")
            params[name] = str(raw)
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise EffectError(f"{where}: must be a number")
        number = float(raw)
        if not param.lo <= number <= param.hi:
            raise EffectError(f"{where}: must be between {param.lo:g} and {param.hi:g}")
        if param.below_nyquist and number >= sample_rate / 2:
            raise EffectError(f"{where}: must be below half the sample rate ({sample_rate / 2:g})")
        params[name] = number
    return Effect(kind, params)


def effect_defaults(kind: str) -> dict[str, float | str]:
    """Every parameter of a known effect type at its default value."""
    return {name: param.default for name, param in _SPECS[kind].params.items()}


def _plugin(effect: Effect) -> pedalboard.Plugin:
    spec = _SPECS[effect.type]
    kwargs: dict[str, Any] = {}
    for name, param in spec.params.items():
        value = effect.params.get(name, param.default)
        if param.choices:
            kwargs[param.arg] = getattr(pedalboard.LadderFilter.Mode, str(value).upper())
        else:
            kwargs[param.arg] = float(value) * param.scale
    return spec.plugin(**kwargs)


def build_chain(effects: Iterable[Effect]) -> pedalboard.Plugin | None:
    """Fresh plugin instances for one track of one render (plugins carry state)."""
    plugins = [_plugin(effect) for effect in effects]
    return pedalboard.Chain(plugins) if plugins else None


def longest_delay_s(effects: Iterable[Effect]) -> float:
    """Longest echo spacing, which bounds how long a tail can stay quiet between echoes."""
    spacing = 0.0
    for effect in effects:
        if effect.type == "delay":
            spacing = max(spacing, float(effect.params.get("delay_ms", 500.0)) / 1000.0)
    return spacing
