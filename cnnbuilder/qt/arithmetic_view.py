"""How a block's numbers come out, as the inspector, the canvas tooltip and the Summary's row
tooltip show it. The arithmetic itself comes from core/inspect (through the Document's cache);
this only lays its lines out as plain text or rich text."""

from __future__ import annotations

import html
from functools import partial

from PySide6.QtGui import QFontDatabase

from ..core.inspect.formulas import BlockArithmetic, Formula
from ..core.inspect.receptive import Field

LETTERS = ("Letters: H, W the input's height and width; F the kernel (window) size, Fh×Fw; S the stride; "
           "P the padding; D the dilation; C the input channels; K the filters (output channels); g the groups; "
           "H′, W′ the output's height and width.")
FIELD_HELP = ("Receptive field: how many pixels of the model's input one output value of this block can "
              "depend on (height×width). Jump: how far apart, in input pixels, neighbouring output values "
              "are (the product of the strides so far). ≈ marks a bound.")
UNKNOWN = ("Its input shape is not known yet (connect an input, or fix the block before it), so there is "
           "nothing to compute.")

_esc = partial(html.escape, quote=False)


def arithmetic_lines(b: BlockArithmetic, short: bool = False) -> list[str]:
    """The lines, as the CLI prints them. `short`: a block in error shows only its shape (its
    parameter count and MACs follow from a shape that cannot be), and zero counts are left out."""
    if b.error:
        return b.shape_lines()
    lines = b.shape_lines()
    for f in (b.params, b.macs):
        if not (short and f.value == 0):
            lines.append(f.text)
    return lines


def field_line(field: Field | None) -> str:
    if field is None or field.size is None:
        return ""
    return f"receptive field {field.text}"


def plain_text(b: BlockArithmetic | None, field: Field | None = None) -> str:
    """What Copy puts on the clipboard."""
    if b is None:
        return UNKNOWN
    lines = arithmetic_lines(b)
    if b.error:
        lines.append(b.error)
    if field_line(field):
        lines.append(field_line(field) + (f" ({field.note})" if field.note else ""))
    return "\n".join(lines)


def mono_family() -> str:
    return QFontDatabase.systemFont(QFontDatabase.FixedFont).family()


def detail_html(detail: str | None) -> str:
    """An error's failing arithmetic step, in the formulas' font ("" when there is none)."""
    return f"<span style=\"font-family:'{mono_family()}'\">{_esc(detail)}</span>" if detail else ""


def _formula_html(f: Formula, mono: str, muted: str) -> str:
    out = f"<span style=\"font-family:'{mono}'\">{_esc(f.text)}</span>"
    if f.general and f.general not in (f.filled, f.label):
        out += (f"<br><span style=\"font-family:'{mono}'; color:{muted}\">"
                f"{'&nbsp;' * (len(f.label) + 2)}{_esc(f.general)}</span>")
    return out


def arithmetic_html(b: BlockArithmetic | None, field: Field | None, muted: str, error_color: str) -> str:
    """The inspector's section: each formula with the user's numbers, its general form in grey
    under it, the failing step in red, and the receptive field."""
    if b is None:
        return f"<span style='color:{muted}'>{_esc(UNKNOWN)}</span>"
    mono = mono_family()
    parts = []
    if b.note:
        parts.append(_esc(b.shape_lines()[0]))
    else:
        parts.extend(_formula_html(f, mono, muted) for f in b.shape_formulas())
    if b.error:
        parts.append(f"<span style=\"font-family:'{mono}'; color:{error_color}\">{_esc(b.error)}</span>")
    else:
        parts.extend(_formula_html(f, mono, muted) for f in (b.params, b.macs))
    text = "<br>".join(parts)
    if field_line(field):
        text += f"<br><br><b>Receptive field</b> {_esc(field.text)}"
        if field.note:
            text += f"<br><span style='color:{muted}'>{_esc(field.note)}</span>"
    return text


def tooltip_html(b: BlockArithmetic | None, field: Field | None = None) -> str:
    """The short form for tooltips (canvas block, Summary row): one line per formula, no general forms."""
    if b is None:
        return ""
    mono = mono_family()
    lines = [_esc(x) for x in arithmetic_lines(b, short=True)]
    if field_line(field):
        lines.append(_esc(field_line(field)))
    return f"<span style=\"font-family:'{mono}'\">" + "<br>".join(lines) + "</span>"
