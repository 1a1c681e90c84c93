"""The app's Altair charts. Every title, axis and legend text comes in already translated, and
categorical axes take pre-formatted labels, so a chart reads the same as the tables beside it.
Charts with a row per item size themselves by a step per row (Streamlit keeps a chart's own
`height` only as a step; a fixed height is given to st.altair_chart instead)."""
from __future__ import annotations

import math

import altair as alt
import pandas as pd

LABEL_LIMIT = 380  # pixels of a row label before it is cut (segment labels are long)


def bars(frame: pd.DataFrame, value: str, label: str, value_title: str, label_title: str,
         tooltip: list, value_format: str = ",.0f") -> alt.Chart:
    """Horizontal bars, largest first."""
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X(f"{value}:Q", title=value_title, axis=alt.Axis(format=value_format)),
        y=alt.Y(f"{label}:N", title=label_title, sort="-x", axis=alt.Axis(labelLimit=LABEL_LIMIT)),
        tooltip=tooltip,
    ).properties(height=alt.Step(24))


def heatmap(frame: pd.DataFrame, x: str, y: str, value: str, text: str, x_title: str, y_title: str,
            value_title: str, tooltip: list, mid: float | None = None) -> alt.Chart:
    """A grid of coloured cells with their value written in (a diverging scale around `mid`)."""
    scale = alt.Scale(scheme="blueorange", domainMid=mid) if mid is not None else alt.Scale(scheme="blues")
    # every column labelled: Vega-Lite drops overlapping labels by default (5 of 9 measures showed)
    base = alt.Chart(frame).encode(x=alt.X(f"{x}:N", title=x_title, axis=alt.Axis(labelAngle=-45, labelLimit=220,
                                                                                 labelOverlap=False)),
                                   y=alt.Y(f"{y}:N", title=y_title, axis=alt.Axis(labelLimit=LABEL_LIMIT)))
    cells = base.mark_rect().encode(color=alt.Color(f"{value}:Q", title=value_title, scale=scale),
                                    tooltip=tooltip)
    return (cells + base.mark_text(fontSize=11).encode(text=f"{text}:N")).properties(height=alt.Step(30))


def lines(frame: pd.DataFrame, x: str, x_order: list[str], y: str, colour: str, x_title: str, y_title: str,
          colour_title: str, tooltip: list, y_format: str = ",.0f", every_x: bool = False) -> alt.Chart:
    """One line per colour group over ordered (pre-formatted) x labels (`every_x`: every label on the
    axis, also those without a point, so a gap in the data shows as one)."""
    scale = alt.Scale(domain=x_order) if every_x else alt.Undefined
    return alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X(f"{x}:O", title=x_title, sort=x_order, scale=scale, axis=alt.Axis(labelAngle=-45)),
        y=alt.Y(f"{y}:Q", title=y_title, axis=alt.Axis(format=y_format)),
        color=alt.Color(f"{colour}:N", title=colour_title),
        tooltip=tooltip,
    )


def scatter(frame: pd.DataFrame, x: str, y: str, colour: str, x_title: str, y_title: str, colour_title: str,
            tooltip: list) -> alt.Chart:
    """Support against confidence, coloured and sized by lift."""
    return alt.Chart(frame).mark_circle(opacity=0.7).encode(
        x=alt.X(f"{x}:Q", title=x_title, axis=alt.Axis(format=".1%")),
        y=alt.Y(f"{y}:Q", title=y_title, axis=alt.Axis(format=".0%")),
        color=alt.Color(f"{colour}:Q", title=colour_title, scale=alt.Scale(scheme="viridis")),
        size=alt.Size(f"{colour}:Q", title=colour_title, legend=None),
        tooltip=tooltip,
    )


def network_layout(pairs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes on a circle, and each (source, target) pair as a two-point path from the source
    (width 1) to the target (width TAPER): a trail that widens towards the 'then' side shows the
    direction whatever the chart's aspect ratio. Returns (nodes, paths) in the unit square."""
    names = list(dict.fromkeys([*pairs.source, *pairs.target]))
    nodes = pd.DataFrame({"name": names,
                          "x": [math.cos(2 * math.pi * i / len(names)) for i in range(len(names))],
                          "y": [math.sin(2 * math.pi * i / len(names)) for i in range(len(names))]})
    at = nodes.set_index("name")
    ends = [pairs.assign(edge=range(len(pairs)), x=at.x.reindex(pairs[end]).to_numpy(),
                         y=at.y.reindex(pairs[end]).to_numpy(), width=width)
            for end, width in (("source", 1.0), ("target", TAPER))]
    return nodes, pd.concat(ends, ignore_index=True)


# Where a node's label goes, by its place on the circle: outward.
LABEL_PLACE = {"left": {"align": "left", "dx": 10}, "right": {"align": "right", "dx": -10},
               "top": {"align": "center", "dy": -14}, "bottom": {"align": "center", "dy": 14}}
TAPER = 9.0  # pixel width of a rule's trail at its 'then' end


def network(pairs: pd.DataFrame, weight_title: str, tooltip: list) -> alt.LayerChart:
    """Items as labelled nodes on a circle (labels outward), rules as trails widening towards
    the 'then' item, coloured by lift."""
    nodes, paths = network_layout(pairs)
    axis = alt.Axis(title=None, labels=False, ticks=False, domain=False, grid=False)
    x = alt.X("x:Q", axis=axis, scale=alt.Scale(domain=[-2.4, 2.4]))
    y = alt.Y("y:Q", axis=axis, scale=alt.Scale(domain=[-1.25, 1.25]))
    trails = alt.Chart(paths).mark_trail(opacity=0.75).encode(
        x=x, y=y, detail="edge:N", order="width:Q", size=alt.Size("width:Q", scale=None, legend=None),
        color=alt.Color("weight:Q", title=weight_title, scale=alt.Scale(scheme="viridis")), tooltip=tooltip)
    dots = alt.Chart(nodes).mark_circle(size=120, color="#4c78a8").encode(x=x, y=y, tooltip=["name:N"])
    side = pd.Series(["left" if at_x > 0.3 else "right" if at_x < -0.3 else "top" if at_y > 0 else "bottom"
                      for at_x, at_y in zip(nodes.x, nodes.y)], index=nodes.index)
    labels = [alt.Chart(nodes[side == where]).mark_text(fontSize=11, limit=170, **LABEL_PLACE[where])
              .encode(x=x, y=y, text="name:N") for where in LABEL_PLACE if (side == where).any()]
    return alt.layer(trails, dots, *labels)


def forest(frame: pd.DataFrame, label: str, estimate: str, low: str, high: str, label_title: str,
           x_title: str, tooltip: list, x_format: str = "+.0%", colour: str | None = None,
           colour_title: str = "", colour_order: list[str] | None = None) -> alt.Chart:
    """A forest plot: each row's estimate with its confidence interval, and a line at no effect
    (points coloured by `colour`, a pre-formatted field, when given: the first of `colour_order`
    red, the others grey)."""
    base = alt.Chart(frame).encode(y=alt.Y(f"{label}:N", title=label_title, sort=None,
                                           axis=alt.Axis(labelLimit=LABEL_LIMIT)))
    interval = base.mark_rule(strokeWidth=2).encode(
        x=alt.X(f"{low}:Q", title=x_title, axis=alt.Axis(format=x_format)), x2=f"{high}:Q", tooltip=tooltip)
    point = base.mark_point(filled=True, size=80, color="#e45756").encode(
        x=f"{estimate}:Q", tooltip=tooltip,
        **({"color": alt.Color(f"{colour}:N", title=colour_title, legend=alt.Legend(orient="bottom"),
                               scale=alt.Scale(domain=colour_order, range=["#e45756", *["#9d9d9d"] * (
                                   len(colour_order) - 1)]) if colour_order else alt.Undefined)}
           if colour else {}))
    zero = alt.Chart(pd.DataFrame({"zero": [0.0]})).mark_rule(strokeDash=[4, 4], color="gray").encode(x="zero:Q")
    return (interval + point + zero).properties(height=alt.Step(30))


def grouped_bars(frame: pd.DataFrame, label: str, group: str, value: str, label_title: str, value_title: str,
                 group_title: str, tooltip: list) -> alt.Chart:
    """Side-by-side horizontal bars (e.g. cost and incremental revenue per campaign)."""
    return alt.Chart(frame).mark_bar().encode(
        y=alt.Y(f"{label}:N", title=label_title, axis=alt.Axis(labelLimit=LABEL_LIMIT)),
        yOffset=alt.YOffset(f"{group}:N"),
        x=alt.X(f"{value}:Q", title=value_title, axis=alt.Axis(format=",.0f")),
        color=alt.Color(f"{group}:N", title=group_title),
        tooltip=tooltip,
    )


def stacked_bars(frame: pd.DataFrame, label: str, part: str, part_order: list[str], value: str, label_title: str,
                 value_title: str, part_title: str, tooltip: list, colours: list[str] | None = None) -> alt.Chart:
    """Horizontal bars split into parts (shares that add up to 1: a topic's sentiment mix), parts
    in `part_order` (pre-formatted)."""
    scale = alt.Scale(domain=part_order, range=colours) if colours else alt.Scale(domain=part_order)
    return alt.Chart(frame).mark_bar().encode(
        y=alt.Y(f"{label}:N", title=label_title, sort=None, axis=alt.Axis(labelLimit=LABEL_LIMIT)),
        x=alt.X(f"{value}:Q", title=value_title, stack="normalize", axis=alt.Axis(format=".0%")),
        color=alt.Color(f"{part}:N", title=part_title, scale=scale, legend=alt.Legend(orient="bottom")),
        order=alt.Order("part_order:Q"),
        tooltip=tooltip,
    ).transform_calculate(part_order=f"indexof({part_order!r}, datum['{part}'])").properties(height=alt.Step(24))
