"""SQL expression builders that parse and normalize raw text columns.

Each returns a DuckDB expression over a text column; a value that cannot be parsed
becomes NULL so the staging rules can send the row to quarantine with a reason.
"""
from __future__ import annotations

from medmkt_assets.lib.engine.sql import sql_list
from medmkt_assets.lib.privacy.pseudonym import ID_WHITESPACE

# Unambiguous non-ISO date spellings seen in exports; day/month-ambiguous forms such as
# 07/08/2024 are deliberately not guessed.
_EXTRA_DATE_FORMATS = ("%Y%m%d", "%d.%m.%Y", "%Y年%m月%d日", "%Y.%m.%d")

_GENDER = {"F": ("f", "female", "woman", "w", "女", "女性"), "M": ("m", "male", "man", "男", "男性")}

ORDER_CHANNEL_SYNONYMS = {
    "store": ("store", "in_store", "in-store", "instore", "shop", "pharmacy", "retail", "offline", "门店", "药店"),
    "online": ("online", "web", "website", "ecommerce", "e-commerce", "internet", "线上", "网店"),
    "app": ("app", "mobile", "mobile_app", "application", "小程序"),
    "phone": ("phone", "telephone", "call", "call_center", "hotline", "电话"),
    "clinic": ("clinic", "hospital", "outpatient", "ambulatory", "inpatient", "emergency", "wellness",
               "urgentcare", "诊所", "医院"),
}
CAMPAIGN_CHANNEL_SYNONYMS = {
    "sms": ("sms", "text", "短信"),
    "email": ("email", "e-mail", "mail", "邮件"),
    "app_push": ("app_push", "push", "app", "notification"),
    "call": ("call", "phone", "telephone", "电话"),
    "wechat": ("wechat", "weixin", "微信"),
}


# The characters `text` strips, as a regex class of the characters themselves (no escapes: the
# same pattern reads alike in RE2 and in Java's regex, on Spark).
_SPACE = f"[{ID_WHITESPACE}]"


def text(expr: str) -> str:
    """Trimmed text, blank → NULL: what lib.privacy.pseudonym.clean_id_sql gives, as one regex
    (trim with a set of characters re-reads the set on every row, several times slower on ids
    that are all different)."""
    return f"nullif(regexp_replace(CAST({expr} AS VARCHAR), '^{_SPACE}+|{_SPACE}+$', '', 'g'), '')"


def lower_text(expr: str) -> str:
    return f"lower({text(expr)})"


def timestamp(expr: str) -> str:
    """ISO 8601 (date or date-time, with or without zone) or a few unambiguous variants.

    The untrimmed text is cast first: where that succeeds the trimmed text gives the same time
    (the cast skips the ASCII spaces it accepts), and most values need nothing more. A CASE, not a
    coalesce: DuckDB computes every argument of a coalesce on every row."""
    t = text(expr)
    formats = ", ".join(f"'{f}'" for f in _EXTRA_DATE_FORMATS)
    cast = f"try_cast(CAST({expr} AS VARCHAR) AS TIMESTAMP)"
    return (f"CASE WHEN {cast} IS NOT NULL THEN {cast} "
            f"ELSE coalesce(try_cast({t} AS TIMESTAMP), try_strptime({t}, [{formats}])) END")


def date(expr: str) -> str:
    return f"CAST({timestamp(expr)} AS DATE)"


def integer(expr: str) -> str:
    """Whole numbers only: '2' and '2.0' parse, '2.5' does not."""
    t = text(expr)
    return (f"CASE WHEN try_cast({t} AS DOUBLE) = floor(try_cast({t} AS DOUBLE)) "
            f"THEN try_cast(try_cast({t} AS DOUBLE) AS BIGINT) END")


def number(expr: str) -> str:
    return f"try_cast({text(expr)} AS DOUBLE)"


def boolean(expr: str) -> str:
    t = lower_text(expr)
    return (f"CASE WHEN {t} IN ('true', 't', '1', 'yes', 'y', '是') THEN true "
            f"WHEN {t} IN ('false', 'f', '0', 'no', 'n', '否') THEN false END")


def gender(expr: str) -> str:
    """F, M or U (contract: female/male/f/m/女/男 accepted, anything else U)."""
    t = lower_text(expr)
    return f"CASE WHEN {t} IN ({sql_list(_GENDER['F'])}) THEN 'F' WHEN {t} IN ({sql_list(_GENDER['M'])}) THEN 'M' ELSE 'U' END"


def mapped(expr: str, synonyms: dict[str, tuple[str, ...]], other: str | None = "other") -> str:
    """Map spelling variants onto canonical values; unknown non-blank values → `other`."""
    t = f"replace(replace({lower_text(expr)}, ' ', '_'), '-', '_')"
    cases = " ".join(f"WHEN {t} IN ({sql_list(tuple(v.replace(' ', '_').replace('-', '_') for v in vals))}) "
                     f"THEN '{canon}'" for canon, vals in synonyms.items())
    fallback = f"'{other}'" if other else "NULL"
    return f"CASE WHEN {t} IS NULL THEN NULL {cases} ELSE {fallback} END"


def order_channel(expr: str) -> str:
    return mapped(expr, ORDER_CHANNEL_SYNONYMS)


def campaign_channel(expr: str) -> str:
    return mapped(expr, CAMPAIGN_CHANNEL_SYNONYMS, other=None)


def category(expr: str) -> str:
    """snake_case category names: 'Diabetes Care' → diabetes_care."""
    return f"regexp_replace(lower({text(expr)}), '[\\s\\-/]+', '_', 'g')"
