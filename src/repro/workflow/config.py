"""Config validation against ``workflow/schemas/config.schema.yaml``, with defaults filled in.

Errors name the offending key as a dotted path and, where the schema says, the
allowed values, so that a typo fails before any job runs.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators


class ConfigError(ValueError):
    """The config breaks the schema; the message names every offending key."""


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


_DefaultFillingValidator = _with_defaults(Draft202012Validator)


def _key_path(error) -> str:
    parts = []
    for p in error.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else (("." if parts else "") + str(p)))
    return "".join(parts) or "<top level>"


def _describe(error) -> str:
    key = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        where = "" if key == "<top level>" else f" under '{key}'"
        return f"unknown key(s) {extra}{where}; allowed keys: {allowed}"
    if error.validator == "enum":
        return f"key '{key}': {error.instance!r} is not allowed; allowed values: {error.validator_value}"
    if error.validator == "required":
        return f"key '{key}': {error.message}"
    return f"key '{key}': {error.message}"


def validate_config(config: dict, schema_path) -> dict:
    """Validate ``config`` in place (filling defaults) and return it; raise ConfigError listing every problem."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _DefaultFillingValidator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        lines = "\n".join(f"  - {_describe(e)}" for e in errors)
        raise ConfigError(f"invalid config ({len(errors)} problem(s)):\n{lines}")
    _check_semantics(config, schema)
    return config


def _check_semantics(config: dict, schema: dict | None = None) -> None:
    """Rules a JSON schema cannot say: a list of numbers or names must not repeat a value.

    Only lists the schema describes are checked (with ``schema`` given): free-form objects such as
    a loader's ``options`` pass keyword arguments whose lists may repeat values (``split: [0.6,
    0.2, 0.2]``, ``hidden: [64, 64]``); their functions check them.
    """
    problems = []
    for path, values in _lists(config, schema=schema):
        if all(isinstance(v, (int, float, str)) for v in values) and len(set(values)) != len(values):
            problems.append(f"key '{path}': repeated values in {values}")
    if problems:
        raise ConfigError("invalid config:\n" + "\n".join(f"  - {p}" for p in problems))


_ANY = object()  # no schema given: check every list


def _child_schema(schema, key):
    """The schema of ``key`` inside an object schema, or None when the object is free-form there."""
    if schema is _ANY:
        return _ANY
    if not isinstance(schema, dict):
        return None
    if key in schema.get("properties", {}):
        return schema["properties"][key]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) and extra else None


def _lists(node, prefix="", schema=None):
    schema = _ANY if schema is None else schema
    if isinstance(node, dict):
        for k, v in node.items():
            sub = _child_schema(schema, k)
            if sub is not None:
                yield from _lists(v, f"{prefix}.{k}" if prefix else str(k), sub)
    elif isinstance(node, list):
        yield prefix, node


def load_and_validate(config_path, schema_path) -> dict:
    path = Path(config_path)
    try:
        config = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return validate_config(config, schema_path)
