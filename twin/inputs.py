"""The user's input files as text and YAML: UTF-8 only, a YAML mapping without duplicate keys, one-line errors
naming the file. Scenario, study, plan and QC files are read through here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from twin.errors import TwinError


def read_text(path: Path) -> str:
    """The file's text, decoded as UTF-8 (a leading byte-order mark is dropped); TwinError naming the file when it
    is missing, unreadable or not UTF-8 text."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TwinError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise TwinError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise TwinError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TwinError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); save the file as UTF-8"
        ) from None


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping names the same key twice."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice (PyYAML silently keeps the last one)."""


def _mapping_without_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` merges; keys given next to it override the merged ones, as YAML means
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:
            continue  # an unhashable key: construct_mapping below names it
        if duplicate:
            raise DuplicateKeyError(
                None, None, f"duplicate key {key!r} (YAML would keep only the last)", key_node.start_mark
            )
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def yaml_error(path: Path, exc: yaml.YAMLError) -> TwinError:
    """One line for a YAML syntax error: file, line and column, and what the parser found."""
    mark = getattr(exc, "problem_mark", None)
    pos = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["not valid YAML"])[0]
    kind = "" if isinstance(exc, DuplicateKeyError) else "YAML syntax error: "
    return TwinError(f"{path}: {kind}{pos}{problem}")


def load_yaml(path: Path, what: str) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (`what` names the kind of file in the messages: "a scenario").

    Missing, unreadable, non-UTF-8, empty (or only comments), syntax errors, duplicate keys, deeper nesting than
    the parser can follow and a top level that is not a mapping are each one TwinError line naming the file."""
    text = read_text(path)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc) from None
    except RecursionError:
        raise TwinError(f"{path}: YAML nested too deeply") from None
    _check_aliases(path, data)
    if data is None:
        raise TwinError(f"{path}: the file is empty; {what} is a mapping of fields (`name: ...`)")
    if not isinstance(data, dict):
        raise TwinError(f"{path}: {what} must be a mapping of fields, got {_kind(data)}")
    return data


MAX_ALIAS_VALUES = 1_000_000


def _check_aliases(path: Path, data: Any) -> None:
    """TwinError when YAML aliases (`*name`) make the document refer to itself, or expand it to more than
    MAX_ALIAS_VALUES values beyond what its text holds (nested aliases grow exponentially: "billion laughs")."""
    expanded: dict[int, int] = {}  # container id -> values under it with aliases expanded; -1 while visiting
    written = 0  # values as written: each distinct container once

    def size(node: Any) -> int:
        nonlocal written
        if not isinstance(node, dict | list):
            return 1
        key = id(node)
        if key in expanded:
            if expanded[key] < 0:
                raise TwinError(f"{path}: a YAML alias refers to a value that contains it")
            return expanded[key]
        expanded[key] = -1
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        written += 1 + len(children)
        total = 1
        for child in children:
            total += size(child)
            if total > max(MAX_ALIAS_VALUES, written):
                raise TwinError(
                    f"{path}: YAML aliases expand the file to more than {MAX_ALIAS_VALUES} values; write the "
                    "values out or use fewer nested aliases"
                )
        expanded[key] = total
        return total

    try:
        size(data)
    except RecursionError:
        raise TwinError(f"{path}: YAML nested too deeply") from None


def _kind(data: Any) -> str:
    if isinstance(data, list):
        return "a list"
    if isinstance(data, str):
        return "a single string"
    return f"a single value ({type(data).__name__})"


def one_line(text: str) -> str:
    """A message as one line: line breaks and other unprintable characters (from a file's keys or values)
    written as escapes."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
