"""Every word the insight app shows, in English and Simplified Chinese, and locale formatting.

The words live in gettext catalogs (app/locale/<lang>/LC_MESSAGES/medmkt.po, compiled to .mo).

`t(key, lang)` gives the app's own text; `term(value, lang)` a word the data uses
(categories, channels, purposes, kinds, exclusion reasons); `segment_label` translates the
generated segment labels part by part. Numbers and dates go through Babel in the chosen
locale, and a hidden (suppressed) cell always renders as HIDDEN, never as a number.
"""
from __future__ import annotations

import datetime as dt
import re

import pandas as pd
from babel.dates import format_date, format_datetime, format_skeleton
from babel.numbers import format_currency, format_decimal, format_percent

from medmkt_assets.app import catalogs

LANGUAGES = {"en": "English", "zh": "简体中文"}
LOCALES = {"en": "en", "zh": "zh_Hans_CN"}
CURRENCY = "CNY"


def _catalogs() -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """TEXT and TERMS of each language, from its compiled gettext catalog (app/locale, see catalogs.py)."""
    text: dict[str, dict[str, str]] = {}
    terms: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES:
        found = catalogs.messages(catalogs.read_catalog(catalogs.mo_path(lang)))
        text[lang] = {key: value for (context, key), value in found.items() if context is None}
        terms[lang] = {key: value for (context, key), value in found.items() if context == catalogs.TERM}
    return text, terms


# The app's own texts by key, and the words of the data: categories (CATEGORY_KEYWORDS and the
# demo world), order and campaign channels, purposes, product kinds, rule scopes, campaign
# status, exclusion reasons, uplift training bases and learners, the parts of segment labels
# (lib/models/segments.py), and the demo world's regions. A word not listed is shown as the
# data writes it.
TEXT, TERMS = _catalogs()

# Reasons built from a purpose or a channel (lib/privacy/audiences.py), translated by their parts.
REASON_PATTERNS = (
    (re.compile(r"^no (.+) consent$"), "reason.no_consent"),
    (re.compile(r"^(.+) consent revoked$"), "reason.consent_revoked"),
    (re.compile(r"^no contact details for (.+)$"), "reason.no_contact"),
)
AGE_BAND = re.compile(r"^(\d+)-(\d+)$")
SEGMENT_SEPARATOR = " · "


def t(key: str, lang: str, **values) -> str:
    """The app's text for `key` in `lang`, with `{name}` placeholders filled."""
    text = TEXT[lang][key]
    return text.format(**values) if values else text


def term(value: str | None, lang: str) -> str:
    """A word of the data in `lang`; one the dictionary lacks is shown as written (underscores as spaces)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–"
    key = str(value)
    for spelling in (key, key.replace(" ", "_"), key.replace("_", " ")):  # labels write categories with spaces
        if spelling in TERMS[lang]:
            return TERMS[lang][spelling]
    band = AGE_BAND.match(key)
    if band:
        return f"{band[1]}–{band[2]}岁" if lang == "zh" else key
    return key.replace("_", " ")


def reason(value: str, lang: str) -> str:
    """An audience exclusion reason in `lang`."""
    for pattern, template in REASON_PATTERNS:
        found = pattern.match(value)
        if found:
            return TEXT[lang][template].format(term(found[1], lang))
    return term(value, lang)


def segment_label(label: str | None, lang: str) -> str:
    """'high value · diabetes care · clinic · 70-79 #3' in `lang`, part by part (the '#id' that
    makes a label unique is kept)."""
    if label is None or (not isinstance(label, str) and pd.isna(label)):
        return "–"
    text, _, suffix = str(label).partition(" #")
    parts = [term(part, lang) for part in text.split(SEGMENT_SEPARATOR)]
    return SEGMENT_SEPARATOR.join(parts) + (f" #{suffix}" if suffix else "")


def join(items, lang: str) -> str:
    """A list in running text: 'a, b' or 'a、b'."""
    return ("、" if lang == "zh" else ", ").join(items)


def term_list(value: str | None, lang: str) -> str:
    """A comma-separated list of data words ('diabetes_care, cardiology') in `lang`."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–"
    return join((term(v.strip(), lang) for v in str(value).split(",")), lang)


def yes_no(value, lang: str) -> str:
    return "–" if value is None or pd.isna(value) else t("yes" if value else "no", lang)


def number(value, lang: str, digits: int = 0) -> str:
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=LOCALES[lang])


def percent(value, lang: str, digits: int = 1) -> str:
    pattern = "#,##0" + ("." + "0" * digits if digits else "") + "%"
    return format_percent(value, format=pattern, locale=LOCALES[lang])


def points(value, lang: str) -> str:
    """A difference of two rates in percentage points, signed: '+3.2 pp', '+3.2个百分点'."""
    return format_decimal(value * 100, format="+#,##0.0;-#,##0.0", locale=LOCALES[lang]) + t("unit.pp", lang)


def money(value, lang: str) -> str:
    return format_currency(value, CURRENCY, locale=LOCALES[lang])


def money_whole(value, lang: str) -> str:
    """Rounded to the yuan, where cents would crowd a chart."""
    return format_currency(value, CURRENCY, format="¤#,##0", currency_digits=False, locale=LOCALES[lang])


def date(value, lang: str) -> str:
    return format_date(pd.Timestamp(value).date(), format="medium", locale=LOCALES[lang])


def month(value, lang: str) -> str:
    return format_skeleton("yMMM", pd.Timestamp(value).date(), locale=LOCALES[lang])


def timestamp(value, lang: str) -> str:
    moment = pd.Timestamp(value)
    moment = moment.tz_convert("UTC") if moment.tzinfo else moment.tz_localize("UTC")
    return format_datetime(moment.to_pydatetime(), format="medium", tzinfo=dt.timezone.utc,
                           locale=LOCALES[lang]) + " UTC"


def missing_snapshot(path: str) -> tuple[str, str]:
    """Title and body of the no-snapshot message, in both languages at once (whoever reads it)."""
    return (" · ".join(t("missing.title", lang) for lang in LANGUAGES),
            "\n\n".join(t("missing.body", lang, path=path) for lang in LANGUAGES))
