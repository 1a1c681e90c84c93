"""Known answers for patient pseudonyms: the SQL twin must equal Python's hmac."""
from __future__ import annotations

import hashlib
import hmac

import duckdb
import pytest

from medmkt_assets.lib.privacy.pseudonym import (
    clean_id,
    clean_id_sql,
    hmac_sql,
    pseudonymize,
)

# RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
RFC4231_CASE2 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_pseudonymize_matches_rfc4231_vector():
    assert pseudonymize("what do ya want for nothing?", "Jefe") == RFC4231_CASE2


def test_pseudonymize_trims_whitespace_including_ideographic_space():
    assert pseudonymize("  MRN001\t", "k") == pseudonymize("MRN001", "k")
    assert pseudonymize("\u3000MRN001\u3000", "k") == pseudonymize("MRN001", "k")
    assert pseudonymize("MRN001", "k") == hmac.new(b"k", b"MRN001", hashlib.sha256).hexdigest()


def test_empty_ids_are_rejected():
    assert clean_id("   ") is None
    with pytest.raises(ValueError):
        pseudonymize(" ", "k")


@pytest.mark.parametrize("key", ["k", "Jefe", "🔑 ключ 钥匙", "x" * 64, "y" * 200])
@pytest.mark.parametrize("patient_id", ["MRN001", " 00042 ", "王芳-1", "a'b"])
def test_sql_hmac_equals_python_hmac(key, patient_id):
    con = duckdb.connect()
    (got,) = con.execute(f"SELECT {hmac_sql('v', key)} FROM (SELECT ? AS v)", [patient_id]).fetchall()[0]
    assert got == pseudonymize(patient_id, key)
    assert len(got) == 64 and got == got.lower()


def test_sql_hmac_of_blank_is_null_and_clean_id_sql_matches_python():
    con = duckdb.connect()
    assert con.execute(f"SELECT {hmac_sql('v', 'k')} FROM (SELECT ? AS v)", ["  "]).fetchall() == [(None,)]
    for value in ["  a ", "\u3000b\u3000", " ", "c"]:
        assert con.execute(f"SELECT {clean_id_sql('v')} FROM (SELECT ? AS v)", [value]).fetchall()[0][0] == clean_id(value)
