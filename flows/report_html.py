"""HTML pieces of the data-quality report: escaping, tables, inline PNG charts, collapsed blocks.

Every value put into a page goes through `e` (or `table`, which calls it), so text from the data
stays text.
"""

from __future__ import annotations

import base64
import html
import io


def e(value) -> str:
    """`value` as HTML-escaped text (quotes too, so it is safe inside an attribute)."""
    return html.escape(str(value), quote=True)


def png(figure) -> str:
    """An <img> holding `figure` as an inline PNG; closes the figure."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return f'<img alt="chart" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode("ascii")}">'


def figure(width: float = 7.0, height: float = 3.2):
    """A new matplotlib figure and axes on the Agg (file-only) backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def table(headers: list[str], rows: list[list], numeric: set[int] = frozenset(), markup: set[int] = frozenset(),
          widths: list[int] | None = None) -> str:
    """An HTML table; columns in `numeric` align right, cells of columns in `markup` are already HTML.

    With `widths` (percent per column) the table spans the page with those column widths.
    """

    def cell(index: int, value) -> str:
        content = value if index in markup else e(value)
        return f'<td class="num">{content}</td>' if index in numeric else f"<td>{content}</td>"

    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    opening = "<table>"
    if widths:
        opening = '<table class="wide"><colgroup>' + "".join(f'<col style="width: {int(w)}%">' for w in widths) + "</colgroup>"
    return f"{opening}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def collapsed(summary: str, content_html: str) -> str:
    """A <details> block, closed until clicked."""
    return f"<details><summary>{e(summary)}</summary>{content_html}</details>"
