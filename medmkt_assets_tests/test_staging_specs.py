"""The declarative staging specs: names bound with the `_s_` prefix, bad specs refused."""
from __future__ import annotations

from datetime import datetime

import pytest

from medmkt_assets.lib.privacy.pseudonym import hmac_sql
from medmkt_assets.lib.privacy.sensitive import load_policy
from medmkt_assets.lib.sources.schema import SOURCE_TABLES
from medmkt_assets.lib.sources.staging_specs import Pseudonym, build_specs, table_spec

AS_OF = datetime(2126, 6, 30, 9, 30)


def test_a_spec_binds_placeholders_outputs_keys_and_pseudonyms():
    spec = table_spec(
        "surveys",
        parsed={"patient_id": "trim(patient_id)", "patient_key": Pseudonym("patient_id"), "nps": "try_cast(nps AS INT)"},
        rules=(("{nps} > 10", "nps too high"), ("{nps} > {as_of}", "as-of bound as a literal")),
        unique_key=("patient_key",),
        output=("patient_key", "CAST({nps} AS INTEGER) AS nps", "_source_file"),
        restricted_output=("patient_id", "phone"),
        staged_key={"patient_key": "patient_key"},
    ).bind("secret", AS_OF)
    assert spec.parsed["patient_key"] == hmac_sql("patient_id", "secret")
    assert spec.rules == (("_s_nps > 10", "nps too high"),
                          ("_s_nps > CAST('2126-06-30 09:30:00' AS TIMESTAMP)", "as-of bound as a literal"))
    assert spec.unique_key == ("_s_patient_key",)
    assert spec.output == ("_s_patient_key AS patient_key", "CAST(_s_nps AS INTEGER) AS nps", "_source_file")
    assert spec.restricted_output == ("_s_patient_id AS patient_id", "phone")
    assert spec.staged_key == (("_s_patient_key", "patient_key"),)


@pytest.mark.parametrize("fields, message", [
    ({"rules": (("{nsp} > 10", "typo"),)}, r"\{nsp\} is not a parsed value"),
    ({"unique_key": ("id",)}, r"key 'id' is not a parsed value"),
    ({"output": ("coalesce({nps}, 0)",)}, r"needs an ' AS <name>'"),
])
def test_bad_specs_are_refused_with_a_value_error(fields, message):
    base = {"parsed": {"nps": "nps"}, "rules": (), "output": ("nps",)}
    with pytest.raises(ValueError, match=message):
        table_spec("surveys", **{**base, **fields}).bind("k", AS_OF)


def test_unknown_tables_are_refused_and_every_contract_table_has_a_spec():
    with pytest.raises(ValueError, match="unknown table 'visits'"):
        table_spec("visits", parsed={}, rules=(), output=())
    specs = build_specs("k", AS_OF, load_policy())
    assert set(specs) == set(SOURCE_TABLES)
    # the pseudonym is keyed at bind time: a different key gives different SQL
    assert build_specs("other", AS_OF, load_policy())["orders"].parsed["patient_key"] != specs["orders"].parsed["patient_key"]


def test_only_tables_that_hold_patients_need_the_pseudonym_key():
    """Staging products or campaigns neither needs the key nor warns that the development key is used."""
    from medmkt_assets.lib.sources.staging_specs import holds_patients

    assert not holds_patients("products") and not holds_patients("campaigns")
    assert all(holds_patients(t) for t in ("patients", "orders", "diagnoses", "campaign_contacts", "consents",
                                           "surveys", "events"))
