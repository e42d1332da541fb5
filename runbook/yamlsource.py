"""Load YAML the operator wrote, keeping line numbers, and turn schema errors
into `SourceError`s that name the file, the line and the field."""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from runbook.errors import SourceError

Model = TypeVar("Model", bound=BaseModel)


class FieldError(ValueError):
    """A validator's complaint about a place below the field it checks: `at` is the
    path from that field (a stage name, a step index, a key), so the error can
    name the exact line instead of the line of the whole block."""

    def __init__(self, message: str, at: Sequence[str | int] = (),
                 expected: str | None = None) -> None:
        super().__init__(message)
        self.at = tuple(at)
        self.expected = expected


def load_yaml(path: Path, error: type[SourceError], text: str | None = None) -> Any:
    """Parse a YAML file keeping positions. Syntax errors and duplicate keys
    become `error(file, line, ...)`."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise error(path, None, None, "file not found") from None
        except UnicodeDecodeError as exc:
            raise error(path, None, None, f"not UTF-8 text ({exc.reason})") from None
        except OSError as exc:
            raise error(path, None, None, f"cannot read: {exc.strerror}") from None
    yaml = YAML(typ="rt")
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        start = exc.context_mark
        if exc.problem and exc.context and start is not None and start.line + 1 != line:
            # the problem is often found lines after the mistake (an unclosed bracket or quote)
            problem += f" ({exc.context.strip()} started on line {start.line + 1})"
        raise error(path, line, None, f"YAML syntax: {problem}") from None
    except YAMLError as exc:
        raise error(path, None, None, f"YAML syntax: {exc}") from None


def line_of(document: Any, location: Sequence[str | int]) -> int | None:
    """The 1-based line of the deepest node of `location` that exists in the
    document. Parts that are not in the data (pydantic's union tags, for
    instance) are stepped over."""
    node = document
    line = _node_line(node)
    for part in location:
        if isinstance(node, CommentedMap) and part in node:
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and _addresses(node, part):
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                line = node.lc.item(part)[0] + 1
            node = node[part]
        # otherwise: a part pydantic adds (a tag, a validator name); keep going
    return line


def _node_line(node: Any) -> int | None:
    lc = getattr(node, "lc", None)
    return lc.line + 1 if lc is not None and lc.line is not None else None


def _addresses(node: Any, part: Any) -> bool:
    """Whether `part` names an entry of `node`: a key of a mapping, an index of a list."""
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def dotted(location: Sequence[str | int], document: Any = None,
           keep_missing_last: bool = True) -> str:
    """`('stages', 'detect', 0, 'prompt')` -> `stages.detect[0].prompt`, keeping only
    the parts that address real data, and a missing last field (when it is one:
    after a model-level check the last part is pydantic's union tag)."""
    text = ""
    node = document
    for index, part in enumerate(location):
        if part == "[key]":
            continue  # pydantic's marker for "the key of this mapping entry"
        if document is not None:
            if _addresses(node, part):
                node = node[part]
            elif index != len(location) - 1 or not keep_missing_last:
                continue  # a union tag or validator name pydantic put in the path
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def validate(
    model: type[Model],
    document: Any,
    path: Path,
    error: type[SourceError],
    context: dict[str, Any] | None = None,
    expected: dict[str, str] | None = None,
) -> Model:
    """Validate a parsed document; the first schema error becomes `error(...)`
    with the line and the field, and a did-you-mean for misspelt keys."""
    if not isinstance(document, dict):
        # A whole file that is a list or a line of text: say so in the file's terms.
        what = "a list" if isinstance(document, list) else (
            "nothing" if document is None else f"the value {str(document)[:40]!r}")
        raise error(path, line_of(document, ()) or 1, None,
                    f"the file holds {what} where a mapping of keys is expected",
                    "keys such as " + ", ".join(f"`{k}:`" for k in model.model_fields))
    try:
        return model.model_validate(document, context=context)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # An unknown key usually explains a "missing" one next to it (a typo), so say it first.
        first = min(errors, key=lambda e: (e["type"] != "extra_forbidden",
                                           line_of(document, _location(e)) or 0))
        location = _location(first)
        problem, wanted = describe_error(first, model, document)
        field = dotted(location, document, keep_missing_last=first["type"] == "missing")
        key = str(location[-1]) if location else ""
        if first["type"] in ("union_tag_not_found", "union_tag_invalid"):
            key = str((first.get("ctx") or {}).get("discriminator", "kind")).strip("'")
            field = f"{field}.{key}"
            location = (*location, key)
        if wanted is None and expected:
            wanted = expected.get(key)
        if wanted is None and first["type"] == "string_pattern_mismatch":
            wanted = f"text matching {first['ctx']['pattern']}"
        raise error(path, line_of(document, location), field, problem, wanted) from None


def _location(detail: Any) -> tuple[str | int, ...]:
    cause = (detail.get("ctx") or {}).get("error")
    return tuple(detail["loc"]) + (cause.at if isinstance(cause, FieldError) else ())


def describe_error(detail: Any, model: type[BaseModel], document: Any) -> tuple[str, str | None]:
    kind = detail["type"]
    ctx = detail.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(detail["loc"][-1])
        allowed = _allowed_keys(detail["loc"][:-1], model, document)
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown field '{key}'{hint}", ", ".join(sorted(allowed)) or None
    if kind == "missing":
        return "required field is missing", None
    if kind == "string_type" and isinstance(detail.get("input"), dict):
        # `command: {{ host }}` is a YAML flow mapping, not text
        return "expected text but found a mapping", "text; quote a value that starts with '{'"
    if kind == "string_pattern_mismatch":
        return f"{_short(detail.get('input'))} is not in the expected form", None
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        value = detail.get("input")
        return (f"{_short(value)} is not allowed{_did_you_mean(value, expected)}",
                expected)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = str(ctx.get("expected_tags", ""))
        name = str(ctx.get("discriminator", "kind")).strip("'")
        if kind == "union_tag_not_found":
            return f"'{name}' is missing", None
        tag = ctx.get("tag")
        return (f"{_short(tag)} is not a known {name}{_did_you_mean(tag, tags)}",
                f"one of {tags}")
    message = detail["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    cause = ctx.get("error")
    return message, cause.expected if isinstance(cause, FieldError) else None


def _did_you_mean(value: Any, choices: str) -> str:
    """` (did you mean 'logs'?)` when `value` is close to one of the quoted `choices`."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, re.findall(r"'([^']*)'", choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _allowed_keys(location: Sequence[Any], model: type[BaseModel], document: Any) -> list[str]:
    """Walk the model along the location to list the keys that would be accepted."""
    current: Any = model
    node = document
    for part in location:
        if _addresses(node, part):
            node = node[part]
        current = _sub_model(current, part, node)
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _sub_model(current: Any, part: Any, node: Any) -> Any:
    import typing

    if isinstance(current, type) and issubclass(current, BaseModel):
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            # a union tag or a container index: look for the model named by it
            return current
        return field.annotation
    origin = typing.get_origin(current)
    args = typing.get_args(current)
    if origin is typing.Annotated:
        return _sub_model(args[0], part, node)
    if origin in (list, tuple) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for option in args:
            if isinstance(option, type) and issubclass(option, BaseModel):
                tag_field = option.model_fields.get("kind")
                if tag_field is not None and isinstance(node, dict):
                    literal = typing.get_args(tag_field.annotation)
                    if node.get("kind") in literal:
                        return option
                if part == getattr(option, "__name__", None):
                    return option
        for option in args:
            if option is not type(None):
                return option
    return current


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


Entry = TypeVar("Entry")


def named_or_path(text: str) -> Path | None:
    """`text` as a file path when it looks like one (a .yaml/.yml name or a slash)."""
    candidate = Path(text).expanduser()
    return candidate if candidate.suffix in (".yaml", ".yml") or "/" in text else None


def pick_by_name(name: str, found: dict[str, Entry], errors: Sequence[SourceError]
                 ) -> Entry | None:
    """A loaded catalog entry by name; a file of that name that failed to load
    raises its own error (so the operator sees why); None when there is neither."""
    if name in found:
        return found[name]
    broken = [e for e in errors if Path(e.file).stem == name or _declared_name(e.file) == name]
    if broken:
        raise broken[0]
    return None


def _declared_name(file: str) -> str | None:
    """The `name:` a file that failed to load declares on a line of its own,
    if it can be read at all (a file may be named apart from its file)."""
    try:
        text = Path(file).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(r"(?m)^name:[ \t]*['\"]?([^'\"\s#]+)", text)
    return match.group(1) if match else None

