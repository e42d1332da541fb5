"""The bottom line of every screen: the keys that work now, as `key Label` pairs.

Built from the screen's live bindings (what `check_action` allows), so it never
lists a key that does nothing. When the line is too narrow, the keys that do not
fit give way to an ellipsis before the last ones, and `? Help`, which lists
them all, always stays: Textual's footer cut them at the edge and left stray
letters at 60 columns.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Static

# Kept whatever the width: the way back, and the way to every other key.
ALWAYS = ("escape", "question_mark")
MORE = "…"


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; width: 1fr; background: $panel; color: $text; }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._show()

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def on_resize(self) -> None:
        self._show()

    def _bindings_changed(self, _screen: object) -> None:
        self._show()

    def shown(self) -> list[tuple[str, str]]:
        """(key, label) for every key the bar would show with room enough."""
        pairs: list[tuple[str, str]] = []
        keys_seen: set[str] = set()
        for _node, binding, enabled, _tip in self.screen.active_bindings.values():
            if not (binding.show and enabled) or binding.action in keys_seen:
                continue
            keys_seen.add(binding.action)
            pairs.append((self._key(binding), binding.description))
        if self.app.ENABLE_COMMAND_PALETTE:
            # Last of the optional ones, so the first to give way.
            pairs.append((self._display(self.app.COMMAND_PALETTE_BINDING), "Palette"))
        kept = [p for p in pairs if p[0] in {self._display(k) for k in ALWAYS}]
        return [p for p in pairs if p not in kept] + kept

    def _key(self, binding: Binding) -> str:
        return self.app.get_key_display(binding)

    def _display(self, key: str) -> str:
        return self.app.get_key_display(Binding(key, ""))

    def _show(self) -> None:
        width = self.size.width or self.app.size.width
        self.update(fit(self.shown(), width, {self._display(k) for k in ALWAYS}))


def fit(pairs: list[tuple[str, str]], width: int, always: set[str]) -> Text:
    """As many pairs as fit in `width`, the `always` keys last; an ellipsis where
    some were left out."""
    def render(items: list[tuple[str, str]], cut: bool) -> Text:
        text = Text(" ")
        for key, label in items:
            if cut and key in always and MORE not in text.plain:
                text.append(f"{MORE} ")
            text.append(key, style="bold reverse")
            text.append(f" {label}  ")
        if cut and MORE not in text.plain:
            text.append(MORE)
        return text

    optional = [p for p in pairs if p[0] not in always]
    fixed = [p for p in pairs if p[0] in always]
    for count in range(len(optional), -1, -1):
        text = render(optional[:count] + fixed, count < len(optional))
        if text.cell_len <= width:
            return text
    return render(fixed, True)[:width] if width else Text()
