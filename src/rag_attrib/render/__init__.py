"""Views of an attribution: the coloured-sources HTML page and the Sankey flow.

`render_html` needs only the stdlib; the Sankey functions import plotly when called (the `viz`
extra).
"""

from __future__ import annotations

from .html import render_html
from .sankey import sankey_data, sankey_figure, sankey_html

__all__ = ["render_html", "sankey_data", "sankey_figure", "sankey_html"]
