"""Text made safe for GitHub-flavoured Markdown, as Jinja2 filters.

Everything that reaches the postmortem came from an operator's answer or a
remote host, and must not change the document's structure: a `|` must not
split a table cell, a backtick must not end a code span early, a line that
starts with `#` or `---` must not become a heading, `</details>` must not close
a block, and a stray ``` must not swallow the rest of the report.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

from runbook.sanitize import clean_line, clean_text

_HEADING = re.compile(r"^(\s{0,3})(#)", re.M)
_SETEXT_OR_RULE = re.compile(r"^(\s{0,3})([=\-_*+])(?=[\s=\-_*+]*$)", re.M)
_FENCE = re.compile(r"^(\s{0,3})([`~]{3})", re.M)
# Only what would start markup is escaped, and with a backslash (CommonMark's
# own escape), so `94% -> 0%` reads the same in the file as on GitHub: an HTML
# entity (`&gt;`) would show as such to anyone reading the Markdown itself.
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")  # a tag, a comment, an autolink
_ENTITY = re.compile(r"&(?=#?\w+;)")  # `&amp;` written by a host stays as written
_QUOTE = re.compile(r"^(\s{0,3})>", re.M)  # a blockquote


def _entities(text: str) -> str:
    return _ENTITY.sub(r"\\&", _TAG_START.sub(r"\\<", text))


# Characters that would make a cell's text mean something else in Markdown:
# emphasis in `rm /tmp/*.log *.gz`, a code span in a title, a link, a pipe.
_INLINE_SYNTAX = re.compile(r"([\\`*_\[\]~|])")


def cell(value: object) -> str:
    """Data for a table cell, shown as it is: one line (breaks become <br>),
    Markdown syntax and `|` escaped."""
    text = "" if value is None else str(value)
    lines = [clean_line(line).strip() for line in clean_text(text).split("\n")]
    return "<br>".join(_entities(_INLINE_SYNTAX.sub(r"\\\1", line))
                       for line in lines if line) or " "


def code(value: object) -> str:
    """A code span inside a table cell: its backticks cannot end it early, its `|`
    cannot split the cell (GFM removes the backslash again), line breaks show as ⏎."""
    text = " ⏎ ".join(clean_line(line) for line in str(value or "").split("\n"))
    return _code_span(text).replace("|", "\\|")


def code_text(value: object) -> str:
    """A code span in running text (not in a table)."""
    return _code_span(" ⏎ ".join(clean_line(line) for line in str(value or "").split("\n")))


def _code_span(text: str) -> str:
    if not text.strip():
        return "` `" if text else "—"
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    if text.startswith("`") or text.endswith("`") or (text[0] == " " and text[-1] == " "):
        text = f" {text} "
    return f"{ticks}{text}{ticks}"


def prose(value: object) -> str:
    """An operator's free text as paragraphs: their lists and emphasis stay, but
    nothing in it can open a heading, a fence, an HTML block or end the section."""
    text = clean_text(str(value or "")).strip("\n")
    text = _QUOTE.sub(r"\1\\>", _entities(text))
    text = _HEADING.sub(r"\1\\\2", text)
    text = _SETEXT_OR_RULE.sub(r"\1\\\2", text)
    return _FENCE.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


def html_text(value: object) -> str:
    """Text inside raw HTML (a <summary>), on one line."""
    return html.escape(" ".join(clean_line(line) for line in str(value or "").split("\n")))


def fence(value: object, info: str = "text") -> str:
    """A fenced code block whose fence no line of the text can close."""
    text = clean_text(str(value or "")).rstrip("\n")
    longest = max((len(run) for run in re.findall(r"^\s*(`+)", text, re.M)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text}\n{ticks}"


def link(label: object, href: object) -> str:
    """`[label](href)` with the target percent-encoded, so spaces, parentheses and
    `|` in a path cannot break the link or the table around it."""
    if not href:
        return ""
    target = str(href)
    # A URL keeps its own syntax; a file path has every odd character encoded.
    if target.startswith("#") and not re.search(r"[\s()\[\]|<>]", target):
        return f"[{_label(label)}]({target})"  # a section of this report
    safe = "/.-_~:?=&#%+@,;!$*'" if re.match(r"[a-z][a-z0-9+.-]*://", target) else "/.-_~"
    target = quote(target, safe=safe)
    return f"[{_label(label)}]({target})"


def _label(label: object) -> str:
    return str(label).replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def anchor(heading: str) -> str:
    """The link to a heading of this document, as GitHub names it: lower case,
    spaces as hyphens, other punctuation dropped."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
    return f"#{slug}"


FILTERS = {"cell": cell, "code": code, "code_text": code_text, "prose": prose,
           "html": html_text, "fence": fence, "link": link}
