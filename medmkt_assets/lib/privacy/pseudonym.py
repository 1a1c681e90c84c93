"""Patient pseudonyms: patient_key = hex(HMAC-SHA256(key, trimmed patient_id)).

The same function exists twice on purpose: `hmac_sql` computes it inside DuckDB so
staging never pulls identifiers into Python, and `pseudonymize` is the reference
implementation (Python's hmac module) the SQL is tested against.
"""
from __future__ import annotations

import hashlib
import hmac

# Whitespace stripped from both ends of every id, wherever ids occur (ASCII
# whitespace, no-break space and the CJK ideographic space common in Chinese exports).
ID_WHITESPACE = " \t\n\r\f\v\u00a0\u3000"

DEVELOPMENT_KEY = "medmkt-development-key-not-for-production"

_BLOCK = 64  # SHA-256 block size in bytes


def clean_id(value: str | None) -> str | None:
    """Trim an id the way `clean_id_sql` does; empty becomes None."""
    if value is None:
        return None
    value = value.strip(ID_WHITESPACE)
    return value or None


def clean_id_sql(expr: str) -> str:
    """SQL twin of `clean_id`."""
    chars = ID_WHITESPACE.replace("'", "''")
    return f"nullif(trim(CAST({expr} AS VARCHAR), '{chars}'), '')"


def pseudonymize(patient_id: str, key: str) -> str:
    """Lowercase hex HMAC-SHA256 of the trimmed id, keyed with `key` as UTF-8."""
    cleaned = clean_id(patient_id)
    if cleaned is None:
        raise ValueError("cannot pseudonymize an empty patient_id")
    return hmac.new(key.encode("utf-8"), cleaned.encode("utf-8"), hashlib.sha256).hexdigest()


def _pads(key: str) -> tuple[str, str]:
    raw = key.encode("utf-8")
    if len(raw) > _BLOCK:
        raw = hashlib.sha256(raw).digest()
    raw = raw.ljust(_BLOCK, b"\0")
    inner = bytes(b ^ 0x36 for b in raw).hex()
    outer = bytes(b ^ 0x5C for b in raw).hex()
    return inner, outer


def hmac_sql(id_expr: str, key: str) -> str:
    """A DuckDB expression computing the patient_key of `id_expr` (NULL for empty ids).

    HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)), spelled out with DuckDB's sha256.
    The pads are derived from the key and embedded as hex literals; they are as secret
    as the key, so the generated SQL must never be logged.
    """
    inner, outer = _pads(key)
    cleaned = clean_id_sql(id_expr)
    return (
        f"CASE WHEN {cleaned} IS NULL THEN NULL ELSE "
        f"sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || encode({cleaned})))) END"
    )
