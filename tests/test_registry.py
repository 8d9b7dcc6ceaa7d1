"""Tests of the generic lazy registry and the project's registries (henasy/core/registry.py, henasy/core/catalog.py)."""

from __future__ import annotations

import sys

import pytest

from henasy.core.catalog import REGISTRIES
from henasy.core.registry import Registry, UnknownNameError


def test_lazy_entry_is_imported_on_first_get() -> None:
    reg: Registry = Registry("thing")
    reg.add("json_dumps", "json:dumps", "serialise to JSON")
    assert reg.entry("json_dumps").loaded is None
    import json

    assert reg.get("json_dumps") is json.dumps
    assert reg.entry("json_dumps").loaded is json.dumps


def test_dotted_attribute_path() -> None:
    reg: Registry = Registry("thing")
    reg.add("join", "os:path.join", "join paths")
    import os

    assert reg.get("join") is os.path.join


def test_duplicate_name_is_an_error() -> None:
    reg: Registry = Registry("thing")
    reg.add("a", "json:dumps", "x")
    with pytest.raises(ValueError, match="already registered"):
        reg.add("a", "json:loads", "y")


def test_malformed_target_is_an_error() -> None:
    reg: Registry = Registry("thing")
    with pytest.raises(ValueError, match="module:attribute"):
        reg.add("a", "json.dumps", "x")


def test_unknown_name_suggests_close_matches() -> None:
    reg: Registry = Registry("model")
    reg.add("lavila_tiny", "json:dumps", "x")
    reg.add("henasy", "json:loads", "y")
    with pytest.raises(UnknownNameError) as info:
        reg.get("lavila_tin")
    message = str(info.value)
    assert "'lavila_tiny'" in message and "Did you mean" in message and "bench list models" in message


def test_decorator_registers_loaded_object() -> None:
    reg: Registry = Registry("thing")

    @reg.register("f", "a function")
    def f() -> int:
        return 1

    assert reg.get("f") is f
    assert reg.names() == ["f"]


def test_catalog_lists_without_importing_models() -> None:
    # Listing must not import the model modules (or torch) it names.
    for registry in REGISTRIES.values():
        for entry in registry:
            assert entry.description
            module = entry.target.split(":")[0]
            assert entry.loaded is None or module in sys.modules
