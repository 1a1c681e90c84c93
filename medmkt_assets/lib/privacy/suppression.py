"""Small-cell suppression for reports that count people (contract section 3)."""
from __future__ import annotations

import pandas as pd

# Reports that count people suppress cells of 1..SMALL_CELL_MAX people (contract section 3).
SMALL_CELL_MAX = 10


def is_small_cell(count: int | None, max_small: int = SMALL_CELL_MAX) -> bool:
    """True when a count of people is 1..max_small and must not be published."""
    return count is not None and not pd.isna(count) and 1 <= int(count) <= max_small


def suppressed_sql(count_expr: str, max_small: int = SMALL_CELL_MAX) -> str:
    """SQL: the count itself, or NULL when it is a small cell."""
    return f"CASE WHEN ({count_expr}) BETWEEN 1 AND {max_small} THEN NULL ELSE ({count_expr}) END"


def suppressed_counts(counts: dict[str, int], max_small: int = SMALL_CELL_MAX) -> dict[str, int | str]:
    """Counts for a report: small cells shown as "1-10"; where exactly one is hidden, the smallest
    other count too, so a published total cannot reveal it by subtraction."""
    small = {k for k, n in counts.items() if is_small_cell(n, max_small)}
    if len(small) == 1 and len(counts) > 1:
        small.add(min((k for k in counts if k not in small), key=lambda k: counts[k]))
    return {k: (f"1-{max_small}" if is_small_cell(n, max_small) else "suppressed") if k in small else n
            for k, n in counts.items()}


def suppress_frame(
    frame: pd.DataFrame,
    people_column: str,
    also: list[str] | tuple[str, ...] = (),
    max_small: int = SMALL_CELL_MAX,
) -> pd.DataFrame:
    """Blank `people_column` (and the measures in `also` that would reveal it) in small cells.

    Adds a boolean `suppressed` column so readers can tell a hidden cell from a zero.
    """
    out = frame.copy()
    small = out[people_column].apply(is_small_cell, max_small=max_small)
    for column in (people_column, *also):
        out[column] = out[column].astype("Float64").mask(small)
    out["suppressed"] = small
    return out


def hide_complement(hidden: pd.Series, size: pd.Series, partition: pd.DataFrame) -> pd.Series:
    """Secondary suppression: where a partition (rows that add up to a total published
    elsewhere) hides exactly one row, hide its smallest visible sibling too, so the hidden
    count cannot be had by subtraction. Returns the widened mask (same index)."""
    hidden = hidden.astype(bool).copy()
    for index in partition.groupby(list(partition.columns), dropna=False, sort=False).groups.values():
        if hidden[index].sum() == 1 and len(index) > 1:
            hidden[size[index][~hidden[index]].idxmin()] = True
    return hidden


def hidden_cells(people: pd.Series, partitions: list[pd.DataFrame]) -> pd.Series:
    """Cells to hide: 1..SMALL_CELL_MAX people, then, until nothing changes, the smallest visible sibling
    of a lone hidden cell in each partition (a table whose rows add up along several keys, months
    and topics say, needs each of them closed)."""
    hidden = people.apply(is_small_cell)
    while True:
        before = int(hidden.sum())
        for partition in partitions:
            hidden = hide_complement(hidden, people, partition)
        if int(hidden.sum()) == before:
            return hidden
