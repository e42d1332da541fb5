"""The report settings in `config_dir()/config.yaml`: extra redaction patterns.

    redact:
      - 'corp-[0-9]{6}'                      # the whole match is masked
      - 'session=(?P<secret>[0-9a-f]+)'      # only the `secret` group is masked

Other top-level keys belong to other parts of runbook and are left alone.
Mistakes are `ConfigError`s naming the file and the line: a report must never
go out with a pattern silently dropped.
"""

from __future__ import annotations

import re
from pathlib import Path

from runbook import paths
from runbook.errors import SourceError
from runbook.yamlsource import line_of, load_yaml

CONFIG_NAME = "config.yaml"


class ConfigError(SourceError):
    """config.yaml cannot be read, or holds a redaction pattern that is not a regex."""


def config_path() -> Path:
    return paths.config_dir() / CONFIG_NAME


def redact_patterns(path: Path | None = None) -> list[re.Pattern[str]]:
    path = path or config_path()
    if not path.exists():
        return []
    document = load_yaml(path, ConfigError)
    if document is None:
        return []
    if not isinstance(document, dict):
        raise ConfigError(path, line_of(document, ()), None,
                          "expected a mapping of settings", "redact: [regex, ...]")
    entries = document.get("redact")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ConfigError(path, line_of(document, ("redact",)), "redact",
                          "expected a list of regular expressions", "redact: ['regex', ...]")
    patterns: list[re.Pattern[str]] = []
    for index, entry in enumerate(entries):
        where = line_of(document, ("redact", index))
        if not isinstance(entry, str) or not entry:
            raise ConfigError(path, where, f"redact[{index}]", "expected a regular expression "
                              "as text", "a quoted string such as 'corp-[0-9]+'")
        try:
            pattern = re.compile(entry)
        except re.error as exc:
            raise ConfigError(path, where, f"redact[{index}]",
                              f"not a regular expression: {exc.msg}",
                              "Python `re` syntax; quote it in single quotes") from None
        if pattern.match(""):
            raise ConfigError(path, where, f"redact[{index}]",
                              "the pattern matches empty text", "a pattern that needs text")
        patterns.append(pattern)
    return patterns
