"""The command line's way out to a terminal, a pipe or a file: always cleaned.

Text that came from a host, an alert or a user may hold terminal control
sequences. Everything the command line prints goes through here, so no command
has to remember to clean what it shows:

- `SafeConsole`, the rich console every table and line is printed with: every
  string is cleaned before rich lays it out (so columns keep their widths), and
  whatever reaches the output in a renderable built elsewhere (a `Text` made
  from a host's output) is cleaned segment by segment as it is written;
- `echo()` for text printed as it is: a drafted announcement,
  a history line, a remote command's output;
- `json_text()` for `--json`, where JSON already escapes C0 controls and this
  adds C1 and the bidirectional controls, which `ensure_ascii=False` leaves raw.

What cleaning means is `runbook.sanitize`: controls shown as escapes (`\\x1b`),
colour codes from the text itself removed. runbook's own styling is applied by
rich after cleaning, so it is never touched.
"""

from __future__ import annotations

import json
import re
from typing import Any

import click
from rich.console import Console, ConsoleOptions, RenderableType, RenderHook, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.text import Text

from runbook.sanitize import BIDI, UNSAFE, clean_text

# JSON escapes C0 itself; with ensure_ascii=False it leaves DEL, C1 and bidi raw.
_UNSAFE_IN_JSON = re.compile(rf"[\x7f-\x9f{BIDI}]")


class SafeConsole(Console):
    """A rich Console that cleans every string it is given, and every segment of
    text it writes, of terminal control sequences."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.push_render_hook(_CleanSegments())

    def render_str(self, text: str, **kwargs: Any) -> Text:  # type: ignore[override]
        return super().render_str(clean_text(text), **kwargs)


class _CleanSegments(RenderHook):
    def process_renderables(self, renderables: list[RenderableType]) -> list[RenderableType]:
        return [_Cleaned(r) for r in renderables]


class _Cleaned:
    """The last guard: a control character that reached a segment (a `Text` built
    from raw output) is shown as its escape. The layout was made before, so such
    a line may come out wider than its column: better than a live sequence."""

    def __init__(self, inner: RenderableType) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for segment in console.render(self.inner, options):
            if segment.control or not UNSAFE.search(segment.text):
                yield segment
            else:
                yield Segment(clean_text(segment.text), segment.style)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.inner)


def echo(message: str = "", **kwargs: Any) -> None:
    """`click.echo`, cleaned: every plain line the command line prints."""
    click.echo(clean_text(message), **kwargs)


def json_text(value: Any, *, indent: int | None = 2) -> str:
    """JSON with nothing a terminal acts on: C1 and bidi controls as \\u escapes."""
    text = json.dumps(value, indent=indent, ensure_ascii=False, default=str)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
