"""The one override path: parse ``KEY=VALUE`` → nest dotted model keys → validate → apply to a run config.

Every place that takes overrides uses it: ``bench train``, ``bench eval`` (``--set`` and ``--option``),
``bench sweep --set``, the ``overrides:`` sections of sweep spec files and the Optuna search's sampled
parameters (both through ``sweeps.expand.build_run``). So a value reads the same everywhere and a bad key
gets the same message everywhere.

- **parse**: ``trainer.lr=1e-4`` → ``{"trainer.lr": 1e-4}``. Values are YAML (``yaml.safe_load``: ints,
  floats, ``true``/``false``, ``null``, ``[a, b]``, ``{k: v}``, else a string), plus one rule YAML 1.1
  lacks: a number in exponent form without a dot (``1e-3``, ``2E5``) is a float, not a string.
- **nest**: ``model.loss_weights.nec=0.3`` → ``model.loss_weights: {nec: 0.3}``, deep-merged in order
  (later keys win), so a dict-valued factory argument can be set one entry at a time.
- **validate / apply**: ``data.*`` and ``trainer.*`` keys must be fields of the run config's dataclasses
  (``henasy.training.config``) and their values must fit the field's type; ``model.*`` keys become the
  model factory's keyword arguments, which the factory checks with ``check_options``. An unknown key names
  the allowed ones and the closest match ("Did you mean ...?").
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from henasy.core.errors import BenchError

MODEL = "model"
SECTIONS = ("model", "data", "trainer")  # the first part of every dotted override key
DATACLASS_SECTIONS = ("data", "trainer")  # run-config attributes that are dataclasses
SET_EXAMPLE = "KEY=VALUE, e.g. --set trainer.lr=1e-4"
# A number in exponent form without a dot: YAML 1.1 (PyYAML) reads "1e-3" as a string, "1.0e-3" as a float.
_EXPONENT_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+")


# ---------------------------------------------------------------------------------------------- parse
def as_number(value: Any) -> Any:
    """``value`` with exponent-form number strings (``"1e-3"``) turned into floats, in lists and dicts too."""
    if isinstance(value, str):
        return float(value) if _EXPONENT_NUMBER.fullmatch(value.strip()) else value
    if isinstance(value, dict):
        return {k: as_number(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_number(v) for v in value]
    return value


def parse_value(raw: str) -> Any:
    """One override value: YAML (``yaml.safe_load``) plus the exponent-number rule; empty → ``None``."""
    return as_number(yaml.safe_load(raw)) if raw.strip() else None


def parse(
    items: Iterable[str],
    flag: str = "--set",
    example: str = SET_EXAMPLE,
    *,
    dotted: bool = False,
    prefix: str | None = None,
) -> dict[str, Any]:
    """``["trainer.lr=1e-4", "trainer.freeze=[visual]"]`` → ``{"trainer.lr": 1e-4, ...}`` (later items win).

    ``dotted`` requires ``SECTION.KEY`` keys and ``prefix`` a given first part (e.g. ``"model."``). Errors
    name ``flag`` and the offending item, and show ``example`` as the expected form.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or ((dotted or prefix) and "." not in key):
            raise BenchError(f"{flag} {item!r}: expected {example}")
        if prefix and not key.startswith(prefix):
            raise BenchError(f"{flag} {item!r}: expected {example}")
        try:
            out[key] = parse_value(raw)
        except yaml.YAMLError as err:
            raise BenchError(
                f"{flag} {item!r}: the value is not valid YAML ({err.__class__.__name__})"
            ) from None
    return out


# ----------------------------------------------------------------------------------------------- nest
def deep_merge(old: Any, new: Mapping[str, Any]) -> dict[str, Any]:
    """``new`` merged into a copy of ``old`` (a dict, else nothing), recursively; ``new`` wins."""
    merged = dict(old) if isinstance(old, dict) else {}
    for k, v in new.items():
        merged[k] = deep_merge(merged.get(k), v) if isinstance(v, Mapping) else v
    return merged


def nest(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``model.a.b: v`` → ``model.a: {b: v}`` (deep-merged in order); other keys are kept as they are.

    ``model.loss_weights.nec: 0.3`` sets one entry of HENASY's ``loss_weights`` mapping; later keys win.
    """
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        section, _, rest = str(key).partition(".")
        if section != MODEL or not rest:
            out[key] = value
            continue
        head, _, tail = rest.partition(".")
        nested: Any = value
        for part in reversed(tail.split(".") if tail else []):
            nested = {part: nested}
        name = f"{MODEL}.{head}"
        out[name] = deep_merge(out.get(name), nested) if isinstance(nested, Mapping) else nested
    return out


def model_args(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The model factory's keyword arguments of ``overrides``: nested ``model.*`` keys, prefix dropped."""
    return {k.partition(".")[2]: v for k, v in nest(overrides).items() if k.partition(".")[0] == MODEL}


# ------------------------------------------------------------------------------------------- validate
def is_dotted_key(key: Any) -> bool:
    """Whether ``key`` has the form of an override key: ``SECTION.NAME`` with a section of ``SECTIONS``."""
    section, _, name = str(key).partition(".") if isinstance(key, str) else ("", "", "")
    return section in SECTIONS and bool(name)


def unknown_keys_error(what: str, unknown: Iterable[str], allowed: Mapping[str, Iterable[str]]) -> BenchError:
    """The one "unknown key" message: the keys, each group of allowed keys, and the closest matches.

    ``what`` names a key (``"config key"``, ``"HENASY option"``); ``allowed`` maps a label
    (``"Allowed keys"``, ``"LaViLa options"``) to its keys.
    """
    unknown = sorted(unknown)
    named = f"{what} {unknown[0]!r}" if len(unknown) == 1 else f"{what}s {unknown}"
    groups = "; ".join(f"{label}: {', '.join(keys)}" for label, keys in allowed.items())
    choices = [k for keys in allowed.values() for k in keys]
    close = [c for u in unknown for c in difflib.get_close_matches(u, choices, n=1, cutoff=0.6)]
    hint = f" Did you mean {', '.join(repr(c) for c in dict.fromkeys(close))}?" if close else ""
    return BenchError(f"unknown {named}. {groups}.{hint}")


def check_options(owner: str, options: Iterable[str], allowed: Mapping[str, Iterable[str]]) -> None:
    """Raise the shared unknown-key ``BenchError`` when a model factory gets options it does not know.

    ``owner`` names the model family (``"HENASY"``); ``allowed`` maps labels to option names.
    """
    known = {k for keys in allowed.values() for k in keys}
    unknown = [str(k) for k in options if k not in known]
    if unknown:
        raise unknown_keys_error(f"{owner} option", unknown, {k: sorted(v) for k, v in allowed.items()})


def _section_fields(config: Any) -> dict[str, dict[str, Any]]:
    """``{"data": {field: type hint}, "trainer": {...}}`` of a run config (instance or class instance)."""
    return {
        s: typing.get_type_hints(type(getattr(config, s)))
        for s in DATACLASS_SECTIONS
        if dataclasses.is_dataclass(getattr(config, s, None))
    }


def allowed_keys(config: Any) -> list[str]:
    """Every dotted key ``config`` accepts (``model.<arg>`` stands for any argument of the model factory)."""
    keys = [f"{s}.{f.name}" for s in DATACLASS_SECTIONS for f in dataclasses.fields(getattr(config, s))]
    return keys + ["model.<factory argument>"]


def resolve_key(config: Any, key: str) -> str:
    """The full dotted form of ``key``; a bare field name is accepted when exactly one section has it."""
    sections = _section_fields(config)
    if "." in key:
        section, _, name = key.partition(".")
        if section == MODEL and name:
            return key
        if name in sections.get(section, {}):
            return key
    else:
        owners = [s for s, hints in sections.items() if key in hints]
        if len(owners) == 1:
            return f"{owners[0]}.{key}"
    raise unknown_keys_error("config key", [key], {"Allowed keys": allowed_keys(config)})


def coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the type ``hint`` (int, float, bool, str, Optional, list[...], tuple[...])."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(key, value, inner[0])
    if origin is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise BenchError(f"{key} expects a list, got {value!r}; write e.g. {key}=[a, b]")
        return [coerce(key, v, args[0]) for v in value]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise BenchError(f"{key} expects a list of {len(args)} values, got {value!r}")
        return tuple(coerce(key, v, a) for v, a in zip(value, args))
    value = as_number(value) if hint is float else value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        return value
    name = getattr(hint, "__name__", str(hint))
    raise BenchError(f"{key} expects {name}, got {value!r} ({type(value).__name__})")


# ---------------------------------------------------------------------------------------------- apply
def apply(config: Any, overrides: Mapping[str, Any]) -> Any:
    """Set ``overrides`` on ``config`` (a ``RunConfig``) in place and return it.

    ``data.*``/``trainer.*`` values are type-checked against the dataclass field; ``model.*`` keys are
    nested (``nest``) and deep-merged into ``config.model_args``.
    """
    sections = _section_fields(config)
    for key, value in nest(overrides).items():
        section, _, name = resolve_key(config, str(key)).partition(".")
        if section == MODEL:
            old = config.model_args.get(name)
            merge = isinstance(value, Mapping) and isinstance(old, Mapping)
            config.model_args[name] = deep_merge(old, value) if merge else as_number(value)
            continue
        target = getattr(config, section)
        setattr(target, name, coerce(f"{section}.{name}", value, sections[section][name]))
    return config


def validate(overrides: Mapping[str, Any], config: Any) -> None:
    """Raise the ``BenchError`` that applying ``overrides`` to (a copy of) ``config`` would raise."""
    apply(copy.deepcopy(config), overrides)
