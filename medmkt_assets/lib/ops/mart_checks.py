"""Checks on the published marts: small cells, who is in an audience, coverage of the profiled patients.

The assets that write the marts apply these rules as they build; these functions count,
after the fact and in SQL over the published tables, what would break them, so a failure
says how many rows of which kind and a reviewer sees what was counted even when it passes.
"""
from __future__ import annotations

from dataclasses import dataclass

from medmkt_assets.lib.engine.sql import quote_ident
from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.privacy.audiences import audience_sql
from medmkt_assets.lib.privacy.suppression import SMALL_CELL_MAX


@dataclass(frozen=True)
class Counted:
    """Violations by kind (each must be 0) and the sizes they are out of."""

    violations: dict[str, int]
    totals: dict[str, int]

    @property
    def passed(self) -> bool:
        return not any(self.violations.values())


@dataclass(frozen=True)
class SmallCellRule:
    """A mart that counts people: its people-count columns, and the columns whose rows add up to a
    total published elsewhere (None: no such total), within which a lone hidden row could be had
    back by subtraction."""

    table: str
    people_columns: tuple[str, ...]
    partition: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        return f"marts.{self.table}"


SMALL_CELL_RULES = (
    # the segments add up to the profiled patients
    SmallCellRule("segment_summary", ("patients", "contacted_patients"), ()),
    SmallCellRule("campaign_effects", ("treated", "control")),
    # one campaign's segments add up to its treated and control arms; the channels to all campaigns'
    SmallCellRule("campaign_effects_by_group", ("treated", "control"), ("campaign_id", "group_type")),
    # one campaign's reasons add up to every profiled patient
    SmallCellRule("audience_exclusions", ("patients",), ("campaign_id",)),
    SmallCellRule("demand_trends", ("patients",)),
    # patient voice: the topics add up to the analysed comments; one topic's months to its total;
    # one dimension's levels to the overall NPS count
    SmallCellRule("voice_topics", ("authors",), ()),
    SmallCellRule("voice_topic_trends", ("authors",), ("topic_id",)),
    SmallCellRule("nps_summary", ("respondents",), ("dimension",)),
    SmallCellRule("search_themes", ("searches", "searchers")),
)


def small_cells(con: Session, rule: SmallCellRule) -> Counted:
    """Published people counts of 1..SMALL_CELL_MAX per column, and partitions hiding exactly one
    of several rows (its count is the published total minus its siblings)."""
    table = rule.name
    violations = {f"{c}_of_1_to_{SMALL_CELL_MAX}": con.execute(
        f"SELECT count(*) FROM {table} WHERE {quote_ident(c)} BETWEEN 1 AND {SMALL_CELL_MAX}").fetchone()[0]
        for c in rule.people_columns}
    if rule.partition is not None:
        group = f"GROUP BY {', '.join(map(quote_ident, rule.partition))}" if rule.partition else ""
        violations["groups_hiding_one_row"] = con.execute(
            f"SELECT count(*) FROM (SELECT count(*) AS n, count(*) FILTER (WHERE suppressed) AS hidden "
            f"FROM {table} {group}) WHERE hidden = 1 AND n > 1").fetchone()[0]
    rows, hidden = con.execute(f"SELECT count(*), count(*) FILTER (WHERE suppressed) FROM {table}").fetchone()
    return Counted(violations, {"rows": rows, "suppressed_rows": hidden})


# Campaigns with an audience, as lib.privacy.audiences judges them.
AUDIENCE_CAMPAIGNS_SQL = ("SELECT a.campaign_id, k.purpose, k.channel, k.target_category "
                          "FROM (SELECT DISTINCT campaign_id FROM marts.audiences) a "
                          "LEFT JOIN staging.campaigns k USING (campaign_id) ORDER BY a.campaign_id")
UNKNOWN_CAMPAIGN = "campaign not in staging.campaigns"
UNJUDGED_PATIENT = "not in marts.patient_profiles and restricted.patients"


def ineligible_audience_rows(con: Session) -> Counted:
    """Rows of marts.audiences whose patient the audience rules (lib.privacy.audiences.audience_sql, run
    again with every eligible patient kept) exclude now, by reason: deceased, no or revoked consent
    for the campaign's purpose on its channel or `all` (for refill reminders: not a current taker,
    or reminders revoked), no contact details for the channel."""
    reasons: dict[str, int] = {}
    for campaign_id, purpose, channel, category in con.execute(AUDIENCE_CAMPAIGNS_SQL).fetchall():
        if purpose is None:
            found = [(UNKNOWN_CAMPAIGN, con.execute("SELECT count(*) FROM marts.audiences WHERE campaign_id = ?",
                                                    [campaign_id]).fetchone()[0])]
        else:
            judged = audience_sql(campaign_id, purpose, channel, category, audience_share=1.0, max_size=0,
                                  holdout_share=0.0)
            found = con.execute(
                f"SELECT coalesce(j._exclusion, '{UNJUDGED_PATIENT}') AS reason, count(*) FROM marts.audiences a "
                f"LEFT JOIN ({judged}) j USING (patient_key) "
                "WHERE a.campaign_id = ? AND (j.patient_key IS NULL OR j._exclusion IS NOT NULL) GROUP BY 1",
                [campaign_id]).fetchall()
        for reason, n in found:
            reasons[reason] = reasons.get(reason, 0) + n
    rows = con.execute("SELECT count(*) FROM marts.audiences").fetchone()[0]
    return Counted(dict(sorted(reasons.items())), {"rows": rows})


# Per target (one 'all' for a table without targets): the profiled patients with a row.
COVERED_SQL = """
SELECT {target} AS target, count(DISTINCT t.patient_key) AS covered
FROM {table} t SEMI JOIN marts.patient_profiles p USING (patient_key)
GROUP BY ALL"""
COVERAGE_TARGETS = {"patient_segments": None, "recommendations": None, "propensity_scores": "target"}


def uncovered_patients(con: Session, table: str) -> Counted:
    """Profiled patients without a row in marts.<table>, per target (contract section 4: patient_segments
    and recommendations cover everyone in patient_profiles, propensity_scores everyone for each target)."""
    target = COVERAGE_TARGETS[table]
    profiled = con.execute("SELECT count(*) FROM marts.patient_profiles").fetchone()[0]
    covered = dict(con.execute(COVERED_SQL.format(table=f"marts.{table}",
                                                  target=f"t.{quote_ident(target)}" if target else "'all'")
                               ).fetchall())
    if target is None:
        covered.setdefault("all", 0)
    return Counted({f"missing_{t}": profiled - n for t, n in sorted(covered.items())},
                   {"profiled_patients": profiled, "targets": len(covered)})
