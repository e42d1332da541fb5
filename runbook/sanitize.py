"""Make untrusted text safe to put on a terminal, and show what was in it.

Hosts, alerts and users send whatever characters they like. Passed to a
terminal as they are, an OSC 52 sequence writes the operator's clipboard, OSC 0
retitles the window, CSI sequences move the cursor and repaint what is already
on screen. Every piece of such text goes through `clean_line` (one line) or
`clean_text` / `clean_bytes` (many lines) before it reaches a terminal: the
command line's tables and lines, the app's widgets, announcements printed or
written to a file, the listener's output, the postmortem. Evidence on disk stays
byte-exact; only what is shown is cleaned.

What comes out contains no C0 control except `\\n` (multi-line functions only),
no DEL, no C1 control (U+0080-U+009F) and no bidirectional override, whatever the
input. What was there is shown, not hidden:

- Each such character becomes its escape, in the form Python and `printf` read
  back: ESC is `\\x1b`, BEL `\\x07`, the 8-bit CSI `\\x9b`, a right-to-left
  override `\\u202e`. So `ESC ] 0 ; pwned BEL` shows as `\\x1b]0;pwned\\x07`:
  inert, and visibly an attempt. An operator reading evidence should see that
  a host sent escape sequences, not a tidied line.
- Colour and style sequences (SGR: `ESC [ ... m`) are the one exception: they
  are removed whole. Tools print them all the time (`ls`, `systemctl`, `dmesg
  --color`), escaping them would bury the text in noise, and removing them is
  safe: without them no style applies, so nothing can be hidden by them
  (black on black, or SGR 8 "conceal").
- A lone CR becomes `\\x0d`. A terminal would let the text after a CR overwrite
  the text before it, so `rm -rf /\\rls -l` would display as `ls -l`. A CR
  before LF (CRLF line endings) simply disappears.
- Tabs are expanded to spaces (stops every 8 columns, counted in characters
  after cleaning), because a tab's width is up to the terminal and would
  misalign whatever is drawn after it.
- Invalid UTF-8 decodes to U+FFFD. In raw bytes, 0x80-0x9F are never valid
  UTF-8 on their own, so 8-bit controls arrive as U+FFFD; the C1 rule above
  catches them when they come UTF-8 encoded (C2 80 - C2 9F).
"""

from __future__ import annotations

import re

TAB_SIZE = 8

# SGR (colours, bold, conceal...), 7-bit or 8-bit introducer: removed whole.
_STYLE = re.compile(r"(?:\x1b\[|\x9b)[0-9;:]*m")

# What is shown as its escape: C0 but tab and LF, DEL, C1, and the Unicode
# bidirectional controls that reorder what the eye reads ("Trojan source").
BIDI = r"\u200e\u200f\u202a-\u202e\u2066-\u2069"
UNSAFE = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI}]")  # all but tab and LF
_CONTROL_OR_LF = re.compile(rf"[\x00-\x08\x0a-\x1f\x7f-\x9f{BIDI}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean_line(text: str) -> str:
    """One line of untrusted text, safe to display. A trailing LF or CRLF is
    removed; any other line break inside it is shown as its escape (use
    `clean_text` for text with several lines)."""
    if text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    return _clean(text)


def clean_text(text: str) -> str:
    """Many lines of untrusted text, safe to display; line breaks (LF) are kept,
    each line is cleaned on its own, so no sequence spans two lines."""
    if not UNSAFE.search(text) and "\t" not in text:
        return text
    lines = text.split("\n")
    # A CR that ended a line (CRLF) goes with the LF; the last piece had no LF.
    return "\n".join(_clean(line[:-1] if line.endswith("\r") and i < len(lines) - 1
                             else line) for i, line in enumerate(lines))


def _clean(line: str) -> str:
    if _CONTROL_OR_LF.search(line):
        line = _CONTROL_OR_LF.sub(_escape, _STYLE.sub("", line))
    return line.expandtabs(TAB_SIZE) if "\t" in line else line


def clean_bytes(data: bytes) -> str:
    """Raw captured bytes, decoded as UTF-8 with replacement, then `clean_text`."""
    return clean_text(data.decode("utf-8", errors="replace"))
