"""Asset checks on the published marts (contract sections 3 and 4); the counting is in lib.ops.mart_checks.

Small cells and audience eligibility are privacy rules: a failure means the table must not
be used, so those checks block whatever depends on it. A coverage gap leaves correct rows
for the patients covered, so it is an ERROR that does not stop downstream steps.
"""
import dagster as dg

from medmkt_assets.defs.resources import Warehouse
from medmkt_assets.defs.warehouse import WAREHOUSE_POOL
from medmkt_assets.lib.ops.mart_checks import (
    COVERAGE_TARGETS,
    SMALL_CELL_RULES,
    Counted,
    SmallCellRule,
    ineligible_audience_rows,
    small_cells,
    uncovered_patients,
)
from medmkt_assets.lib.privacy.suppression import SMALL_CELL_MAX


def _result(counted: Counted, what: str) -> dg.AssetCheckResult:
    """Pass when nothing was counted; the metadata says what was counted, how many, out of what."""
    return dg.AssetCheckResult(passed=counted.passed, severity=dg.AssetCheckSeverity.ERROR, metadata={
        "counted": what, "violations": sum(counted.violations.values()), **counted.violations, **counted.totals})


def _small_cell_check(rule: SmallCellRule) -> dg.AssetChecksDefinition:
    what = (f"rows of {rule.name} publishing a people count ({', '.join(rule.people_columns)}) of 1-{SMALL_CELL_MAX}"
            + ("" if rule.partition is None else
               f"; groups ({', '.join(rule.partition) or 'the whole table'}) whose rows add up to a published "
               "total and hide exactly one of several rows"))

    @dg.asset_check(asset=dg.AssetKey(["marts", rule.table]), name="small_cells_hidden", blocking=True,
                    pool=WAREHOUSE_POOL, description=f"No cell of 1-{SMALL_CELL_MAX} people can be read or "
                                                     "subtracted back out (contract section 3).")
    def _check(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.session() as con:
            return _result(small_cells(con, rule), what)

    return _check


small_cell_checks = [_small_cell_check(rule) for rule in SMALL_CELL_RULES]


@dg.asset_check(asset=dg.AssetKey(["marts", "audiences"]), name="audience_patients_eligible", blocking=True,
                pool=WAREHOUSE_POOL, additional_deps=[dg.AssetKey(["staging", "consents"])],
                description="Every audience patient is alive and, by the latest consent for the campaign's purpose "
                            "on its channel or 'all', may be contacted now (the audience rules, applied again).")
def audience_patients_eligible(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.session() as con:
        return _result(ineligible_audience_rows(con), "rows of marts.audiences whose patient the audience rules "
                                                       "exclude now, by reason")


def _coverage_check(table: str) -> dg.AssetChecksDefinition:
    per = " for each target" if COVERAGE_TARGETS[table] else ""

    @dg.asset_check(asset=dg.AssetKey(["marts", table]), name="covers_every_profiled_patient", pool=WAREHOUSE_POOL,
                    additional_deps=[dg.AssetKey(["marts", "patient_profiles"])],
                    description=f"Every patient in marts.patient_profiles has a row{per} (contract section 4).")
    def _check(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.session() as con:
            return _result(uncovered_patients(con, table), f"patients in marts.patient_profiles without a row in "
                                                           f"marts.{table}{per}")

    return _check


coverage_checks = [_coverage_check(table) for table in COVERAGE_TARGETS]
