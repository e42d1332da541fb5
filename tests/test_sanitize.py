"""Remote output must never reach the terminal with control sequences in it."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from runbook.sanitize import clean_bytes, clean_line, clean_text

# Anything a terminal could act on: C0 but tab/LF, DEL, C1, ESC, bidi controls.
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def assert_safe(text: str, *, multiline: bool = False) -> None:
    assert not UNSAFE.search(text), repr(text)
    assert "\t" not in text
    if not multiline:
        assert "\n" not in text


@pytest.mark.parametrize(("raw", "expected"), [
    # OSC 52: write the operator's clipboard (payload is base64 of "rm -rf ~").
    ("before\x1b]52;c;cm0gLXJmIH4=\x07after", r"before\x1b]52;c;cm0gLXJmIH4=\x07after"),
    ("before\x1b]52;c;cm0gLXJmIH4=\x1b\\after", r"before\x1b]52;c;cm0gLXJmIH4=\x1b\after"),
    # OSC 0: retitle the window.
    ("\x1b]0;pwned\x07uptime ok", r"\x1b]0;pwned\x07uptime ok"),
    # OSC 8 hyperlink: shown, never followed.
    ("\x1b]8;;https://evil.example\x1b\\click", r"\x1b]8;;https://evil.example\x1b\click"),
    # CSI: cursor moves, erase, private modes are shown.
    ("load\x1b[2J\x1b[H\x1b[1;1Hfake", r"load\x1b[2J\x1b[H\x1b[1;1Hfake"),
    ("\x1b[?1049h\x1b[?25lhidden", r"\x1b[?1049h\x1b[?25lhidden"),
    # Colour and style (SGR) are removed whole, concealing ones too: text stays visible.
    ("\x1b[31;1mred\x1b[0m", "red"),
    ("\x1b[8mconcealed\x1b[m and \x1b[30;40mblack on black", "concealed and black on black"),
    ("\u009b1mbold\u009bm", "bold"),
    # 8-bit CSI and OSC (UTF-8 encoded U+009B, U+009D) and 8-bit ST.
    ("x\u009b2Jy", r"x\x9b2Jy"),
    ("x\u009d0;title\u009cy", r"x\x9d0;title\x9cy"),
    # DCS, SOS, PM, APC.
    ("a\x1bP$q\"p\x1b\\b", r'a\x1bP$q"p\x1b\b'),
    ("a\u0090q#0\u009cb", r"a\x90q#0\x9cb"),
    # Other escapes: reset, save/restore cursor; a lone ESC at the very end.
    ("a\x1bcb\x1b7c", r"a\x1bcb\x1b7c"),
    ("a\x1b", r"a\x1b"),
    # Other C1 controls: NEL, IND.
    ("a\u0085b\u0084c", r"a\x85b\x84c"),
    # C0 controls: NUL, BEL, BS (used to overstrike), VT, FF, DEL.
    ("a\x00b\x07c\x08d\x0be\x0cf\x7fg", r"a\x00b\x07c\x08d\x0be\x0cf\x7fg"),
    # A lone CR is shown, so nothing is overwritten; a CRLF ending disappears.
    ("rm -rf /\rls -l", r"rm -rf /\x0dls -l"),
    ("windows line\r\n", "windows line"),
    ("trailing lf\n", "trailing lf"),
    ("two\nlines", r"two\x0alines"),
    # Bidirectional overrides reorder what the eye reads: shown.
    ("access\u202e\u2066granted", r"access\u202e\u2066granted"),
    # Tabs expand to the next multiple of 8, counted after cleaning.
    ("a\tb", "a       b"),
    ("\x1b[1mab\x1b[0m\tc", "ab      c"),
    # Plain text, including non-ASCII, is untouched.
    ("Filesystem  Size  Used  Use%  Mounted on", "Filesystem  Size  Used  Use%  Mounted on"),
    ("naïve 日本語 ✓", "naïve 日本語 ✓"),
    ("", ""),
])
def test_clean_line(raw: str, expected: str) -> None:
    assert clean_line(raw) == expected
    assert_safe(clean_line(raw))


def test_invalid_utf8_becomes_replacement_character() -> None:
    assert clean_bytes(b"ok \xff\xfe bad \xc3") == "ok \ufffd\ufffd bad \ufffd"


def test_raw_8bit_controls_are_invalid_utf8_and_become_replacement() -> None:
    # A raw 0x9b byte is not valid UTF-8: it shows as U+FFFD, never as 8-bit CSI.
    cleaned = clean_bytes(b"a\x9b2Jb\x9d0;t\x07c")
    assert_safe(cleaned)
    assert cleaned == "a\ufffd2Jb\ufffd0;t\\x07c"


def test_clean_bytes_keeps_lines_and_no_sequence_spans_two() -> None:
    data = (b"line1 \x1b]0;title never terminated\n"
            b"line2 \x1b[31mred\x1b[0m\r\n"
            b"line3\tend\x1b")
    assert clean_bytes(data) == ("line1 \\x1b]0;title never terminated\n"
                                 "line2 red\nline3   end\\x1b")


def test_clean_text_fast_path_keeps_multiline_text() -> None:
    text = "a\nb\nc"
    assert clean_text(text) is text


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_never_leave_a_control(seed: int) -> None:
    import random

    rng = random.Random(seed)
    alphabet = b"\x1b\x9b\x9d\x90\x9c\x07\x18\r\n\t[]P\\;0123456789mHJ?abc\xc2\x80\x9f\xff"
    data = bytes(rng.choice(alphabet) for _ in range(2000))
    cleaned = clean_bytes(data)
    assert_safe(cleaned, multiline=True)
    for line in cleaned.split("\n"):
        assert_safe(clean_line(line))


def test_sanitize_does_not_import_textual() -> None:
    code = "import sys, runbook.sanitize; print('textual' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
