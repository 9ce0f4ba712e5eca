"""Config errors: pydantic's ``ValidationError`` turned into lines a study author can act on.

Every line names the params file, the dotted key (list items as ``models[1].name``, mapping keys as
``results['AP only.auc']``), the value that arrived and what was expected::

    params/nec.yaml: train.epochs: expected an integer >= 1, got 0
    params/nec.yaml: train.lr: expected a number or null, got '1e-3' (text); write 1.0e-3
    params/nec.yaml: Unknown config key train.lerning_rate. Allowed keys under train: [...]

What is expected is read from the schema's annotations (type, ``Field`` constraints, ``None`` allowed) or, for a
rule a validator checks, from the error the validator raises with :func:`config_problem`. An :class:`Expect`
marker in an ``Annotated`` type replaces the generated wording (e.g. ``0 or an integer >= 2``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Annotated, Any, Literal, Mapping, NoReturn, Union

import yaml
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

#: Problems listed in one ConfigError; the rest are counted.
MAX_PROBLEMS = 5

_MISSING = object()
_TYPE_ERRORS = {"int_type", "int_parsing", "int_from_float", "float_type", "float_parsing", "bool_type",
                "bool_parsing", "string_type", "tuple_type", "list_type", "dict_type", "dataclass_type",
                "dataclass_exact_type", "none_required"}
_CONSTRAINT_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "too_short", "too_long",
                      "string_too_short", "string_too_long", "string_pattern_mismatch", "literal_error",
                      "multiple_of"}
_VALUE_SHOWN = 120  # characters of a value shown in a message


class ConfigError(ValueError):
    """A params file or override that does not match the schema."""


@dataclasses.dataclass(frozen=True)
class Expect:
    """``Annotated`` marker: the words for what a field expects, used in error messages instead of the words
    generated from its type and constraints (pydantic ignores it)."""

    text: str


def config_problem(expected: str, *, key: str | None = None, value: Any = _MISSING) -> PydanticCustomError:
    """The error a validator raises for a rule the annotations cannot say.

    Args:
        expected: what a valid value is, e.g. ``"0 or an integer >= 2"``.
        key: the field, relative to the dataclass whose validator raises (``"fold"``, ``"models[1].label"``);
            None for a field validator (pydantic knows the field).
        value: the value to show; by default the value pydantic validated.
    """
    ctx: dict[str, Any] = {"expected": expected}
    if key is not None:
        ctx["key"] = key
    if value is not _MISSING:
        ctx["value"] = value
    return PydanticCustomError("config", "expected {expected}", ctx)


def raise_config_error(error: ValidationError, root: type, source: str, *,
                       hints: Mapping[str, str] | None = None) -> NoReturn:
    """Raise a :class:`ConfigError` of the first few problems in ``error``, one line each, each naming ``source``.

    Args:
        error: pydantic's error from validating a mapping into ``root``.
        root: the top-level config dataclass.
        source: the params file (or ``<dict>``).
        hints: extra words for a key (dotted) that is unknown or of the wrong type, e.g. where a key moved.
    """
    lines = problems(error, root, hints=hints)
    shown = [f"{source}: {line}" for line in lines[:MAX_PROBLEMS]]
    if len(lines) > MAX_PROBLEMS:
        shown.append(f"{source}: ... and {len(lines) - MAX_PROBLEMS} more problem(s)")
    raise ConfigError("\n".join(shown)) from None


def problems(error: ValidationError, root: type, *, hints: Mapping[str, str] | None = None) -> list[str]:
    """One line per problem of ``error`` (without the file name), in the schema's field order."""
    errors = error.errors(include_url=False)
    # a list whose items failed also reports "too short" (0 items after validation): the items say enough
    errors = [e for e in errors if not (e["type"] in ("too_short", "too_long") and any(
        len(o["loc"]) > len(e["loc"]) and tuple(o["loc"][:len(e["loc"])]) == tuple(e["loc"]) for o in errors))]
    return [_problem(err, root, hints or {}) for err in errors]


def _problem(err: Mapping[str, Any], root: type, hints: Mapping[str, str]) -> str:
    kind, loc, value = err["type"], tuple(err["loc"]), err["input"]
    ctx = err.get("ctx") or {}
    if kind == "missing" and loc and isinstance(loc[-1], int):  # a fixed-length list that is too short
        loc = loc[:-1]
        kind = "too_short"
    key, tp, parent = _walk(root, loc)
    if kind == "config":
        key = _join(key, ctx["key"]) if "key" in ctx else key
        return f"{key or 'the top level'}: expected {ctx['expected']}, got {_show(ctx.get('value', value))}"
    if kind == "finite_number":
        return f"{key}: expected a finite number, got {_show(value)}"
    hint = f" ({hints[key]})" if key in hints else ""
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        where = key.rsplit(".", 1)[0] if "." in key else "the top level"
        return (f"Unknown config key {key}{hint}. Allowed keys under {where}: "
                f"{sorted(f.name for f in dataclasses.fields(parent))}")
    if kind == "missing":
        return f"{key}: expected {describe(tp)}{_doc(tp)}, got nothing: the key is missing"
    if kind == "invalid_key" or (kind == "string_type" and loc and loc[-1] == "[key]"):
        return f"{key}: expected a text key, got {_show(value)}"
    if kind in _TYPE_ERRORS:
        return f"{key}: expected {describe(tp, full=False)}, got {_show(value, _number_hint(tp, value))}{hint}"
    if tp is not None and kind in _CONSTRAINT_ERRORS:
        return f"{key}: expected {describe(tp)}, got {_show(value)}"
    return f"{key}: {err['msg']}, got {_show(value)}"



def _walk(root: type, loc: tuple) -> tuple[str, Any, type | None]:
    """The dotted key of ``loc`` ("" for the top level), the annotation there (None for an unknown key) and the
    dataclass holding it."""
    key, tp, parent = "", root, None
    parts = list(loc)
    for i, part in enumerate(parts):
        if part == "[key]":
            continue
        base, _, _ = _unwrap(tp)
        if dataclasses.is_dataclass(base) and isinstance(part, str):
            parent = base
            key = _join(key, part)
            tp = typing.get_type_hints(base, include_extras=True).get(part)
        elif typing.get_origin(base) is tuple and isinstance(part, int):
            args = typing.get_args(base)
            key += f"[{part}]"
            tp = args[0] if len(args) == 2 and args[1] is Ellipsis else args[min(part, len(args) - 1)]
        elif typing.get_origin(base) is dict:
            key += f"[{part!r}]"
            tp = typing.get_args(base)[0 if i + 1 < len(parts) and parts[i + 1] == "[key]" else 1]
        else:
            key, tp = _join(key, str(part)), None
    return key, tp, parent


def _join(key: str, part: str) -> str:
    return f"{key}.{part}" if key and not part.startswith("[") else f"{key}{part}"


def _unwrap(tp: Any) -> tuple[Any, list, bool]:
    """``(base type, Annotated metadata, None allowed)`` of an annotation."""
    meta: list = []
    nullable = False
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            meta.extend(tp.__metadata__)
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            nullable = nullable or len(args) < len(typing.get_args(tp))
            if len(args) != 1:
                return tp, meta, nullable
            tp = args[0]
        else:
            return tp, meta, nullable


def _constraints(meta: list) -> tuple[dict[str, Any], str | None, str | None]:
    """Numeric and length bounds, the Expect text and the description found in ``meta``."""
    bounds: dict[str, Any] = {}
    expect = doc = None
    for m in meta:
        if isinstance(m, Expect):
            expect = m.text
        elif isinstance(m, FieldInfo):
            doc = m.description or doc
            sub, sub_expect, _ = _constraints(list(m.metadata))
            bounds.update(sub)
            expect = sub_expect or expect
        for name in ("ge", "gt", "le", "lt", "min_length", "max_length"):
            if getattr(m, name, None) is not None:
                bounds[name] = getattr(m, name)
    return bounds, expect, doc


def describe(tp: Any, *, full: bool = True) -> str:
    """What a value of annotation ``tp`` must be, in words: ``"a number in [0, 1] or null"``.

    Args:
        full: with ranges, lengths and ``Expect`` wording; False gives the type only (for a value of the
            wrong type: ``"an integer"``).
    """
    if tp is None:
        return "a known key"
    base, meta, nullable = _unwrap(tp)
    bounds, expect, _ = _constraints(meta)
    if full and expect:
        return expect
    text = _base_words(base, full)
    if full:
        text += _range_words(bounds)
        text = _length_words(text, base, bounds)
    return f"{text} or null" if nullable else text


def _base_words(base: Any, full: bool) -> str:
    origin = typing.get_origin(base)
    if base is bool:
        return "true or false"
    if base is int:
        return "an integer"
    if base is float:
        return "a number"
    if base is str:
        return "a string"
    if origin is Literal:
        return f"one of {list(typing.get_args(base))}"
    if dataclasses.is_dataclass(base):
        return f"a mapping of {base.__name__} keys ({', '.join(f.name for f in dataclasses.fields(base))})"
    if origin is dict:
        return "a mapping"
    if origin is tuple:
        args = typing.get_args(base)
        if not full:
            return "a list"
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(describe(args[0], full=False))}"
        return f"a list of {len(args)} {_plural(describe(args[0], full=False))}"
    return getattr(base, "__name__", str(base))


def _plural(words: str) -> str:
    return {"an integer": "integers", "a number": "numbers", "a string": "strings",
            "true or false": "true/false values"}.get(words, words)


def _range_words(bounds: Mapping[str, Any]) -> str:
    lo = ("[", bounds["ge"]) if "ge" in bounds else ("(", bounds["gt"]) if "gt" in bounds else None
    hi = ("]", bounds["le"]) if "le" in bounds else (")", bounds["lt"]) if "lt" in bounds else None
    if lo and hi:
        return f" in {lo[0]}{_num(lo[1])}, {_num(hi[1])}{hi[0]}"
    if lo:
        return f" {'>=' if lo[0] == '[' else '>'} {_num(lo[1])}"
    if hi:
        return f" {'<=' if hi[0] == ']' else '<'} {_num(hi[1])}"
    return ""


def _length_words(text: str, base: Any, bounds: Mapping[str, Any]) -> str:
    lo, hi = bounds.get("min_length"), bounds.get("max_length")
    if lo is None and hi is None:
        return text
    origin = typing.get_origin(base)
    noun = "value" if origin is tuple else "entry" if origin is dict else "character"

    def count(n: int) -> str:
        return f"{n} {noun}" if n == 1 else f"{n} {noun[:-1] + 'ies' if noun.endswith('y') else noun + 's'}"

    if lo == hi:
        return f"{text} ({count(lo)})"
    if hi is None:
        return f"{text} (at least {count(lo)})"
    return f"{text} ({lo or 0} to {count(hi)})"


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _doc(tp: Any) -> str:
    _, meta, _ = _unwrap(tp) if tp is not None else (None, [], False)
    doc = _constraints(meta)[2]
    return f" ({doc})" if doc else ""


def _show(value: Any, hint: str | None = None) -> str:
    text = repr(value)
    text = text if len(text) <= _VALUE_SHOWN else text[:_VALUE_SHOWN - 3] + "..."
    return f"{text} (text); write {hint}" if hint else text


def _number_hint(tp: Any, value: Any) -> str | None:
    """For a number written as text (YAML 1.1 reads ``1e-3`` as a string), how to write it as a number."""
    if not isinstance(value, str) or tp is None:
        return None
    base = _unwrap(tp)[0]
    if base not in (int, float):
        return None
    try:
        x = float(value.strip().replace("_", ""))
    except ValueError:
        return None
    if not math.isfinite(x):
        return None
    if base is int:
        return str(int(x)) if x.is_integer() else None
    m = re.fullmatch(r"([-+]?)(\d*)(?:\.(\d*))?[eE]([-+]?)(\d+)", value.strip())
    if m:
        sign, whole, frac, esign, exp = m.groups()
        written = f"{sign}{whole or '0'}.{frac or '0'}e{esign or '+'}{exp}"
        if yaml.safe_load(written) == x:
            return written
    return repr(x)


# the reading side (strict YAML, overrides, settings without effect), re-exported here
from medlib.config_errors.reading import (MAX_YAML_BYTES, MAX_YAML_NODES, NAME_MAX,  # noqa: E402
                                          check_combinations, ignored_settings, label_text, load_yaml, merge,
                                          parse_overrides, path_text)
