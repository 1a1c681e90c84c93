"""The sensitive-data policy: which diagnoses and products never drive marketing, as SQL.

The policy (sensitive_data.yaml beside this file, or MEDMKT_SENSITIVE_POLICY) lists families
(HIV/STI, substance use, mental health, reproductive health, abuse, genetics) with the codes,
names, products and categories that reveal them, and the care programmes that may use one family
with the patient's consent. `SensitivePolicy` turns it into SQL CASE expressions that staging
uses to move matching rows into `restricted.sensitive_<table>` before any marketing step sees them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from medmkt_assets.lib.engine.sql import sql_list, sql_literal

DEFAULT_POLICY = Path(__file__).with_name("sensitive_data.yaml")
FAMILY_KEYS = {"label", "why", "icd10", "snomed", "omop", "names", "product_names", "product_categories",
               "product_ids"}
PROGRAMME_KEYS = {"family", "purpose", "label"}
ICD10_PREFIX = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{0,4})$")
# what a condition code looks like once dots, blanks and case are gone (ICD-10 "F11.20" -> "F1120")
NORMALIZED_CODE = "upper(replace(trim({code}), '.', ''))"


class PolicyError(ValueError):
    """The policy file cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Family:
    name: str
    label: str
    why: str
    icd10: tuple[str, ...] = ()
    snomed: tuple[str, ...] = ()
    omop: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    product_names: tuple[str, ...] = ()
    product_categories: tuple[str, ...] = ()
    product_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class CareProgramme:
    name: str
    family: str
    purpose: str   # the campaign purpose and the consent purpose that name this programme
    label: str


@dataclass(frozen=True)
class SensitivePolicy:
    families: tuple[Family, ...]
    care_programmes: tuple[CareProgramme, ...]
    source: str

    # --- matching: each returns a CASE giving the family name, or NULL -----------------------
    def condition_family(self, code: str, name: str) -> str:
        """The family of a diagnosis, by its code in any vocabulary, else by its name."""
        return _case((_condition_match(f, code, name), f.name) for f in self.families)

    def condition_match(self, code: str, name: str) -> str:
        """How a diagnosis matched: 'code' or 'name' (NULL: it did not)."""
        return _case(item for f in self.families
                     for item in ((_code_match(f, code), "code"), (_names(f.names, name), "name")))

    def product_family(self, product_id: str, name: str, category: str, description: str) -> str:
        """The family of a product, by its id, category, or a revealing name or description."""
        return _case((_product_match(f, product_id, name, category, description), f.name) for f in self.families)

    def product_match(self, product_id: str, name: str, category: str, description: str) -> str:
        return _case(item for f in self.families for item in (
            (_in(product_id, f.product_ids), "product id"), (_in(f"lower({category})", f.product_categories), "category"),
            (_names(f.product_names, f"concat_ws(' ', {name}, {description})"), "product name")))

    def text_family(self, text: str) -> str:
        """The family a free text (a search query) speaks of, by condition and product name patterns."""
        return _case((_names(f.names + f.product_names, text), f.name) for f in self.families)

    def category_family(self, category: str) -> str:
        return _case((_in(f"lower({category})", f.product_categories), f.name) for f in self.families)

    def care_family(self, purpose: str) -> str:
        """The family a care programme's purpose (of a campaign or a consent) names."""
        return _case((f"lower({purpose}) = {sql_literal(p.purpose)}", p.family) for p in self.care_programmes)

    @property
    def care_purposes(self) -> tuple[str, ...]:
        return tuple(p.purpose for p in self.care_programmes)

    def family(self, name: str) -> Family:
        return next(f for f in self.families if f.name == name)

    def programme_of(self, purpose: str) -> CareProgramme | None:
        return next((p for p in self.care_programmes if p.purpose == purpose), None)


def load_policy(path: str | Path | None = None) -> SensitivePolicy:
    """Read and check a policy file (the packaged one when `path` is empty)."""
    path = Path(path) if path else DEFAULT_POLICY
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"sensitive-data policy {path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"sensitive-data policy {path}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(document, dict) or not isinstance(document.get("families"), dict) or not document["families"]:
        raise PolicyError(f"sensitive-data policy {path}: expected a mapping with a non-empty `families` mapping")
    families = tuple(_family(path, name, body) for name, body in document["families"].items())
    programmes = tuple(_programme(path, name, body, {f.name for f in families})
                       for name, body in (document.get("care_programmes") or {}).items())
    return SensitivePolicy(families, programmes, str(path))


def _family(path: Path, name: str, body) -> Family:
    where = f"sensitive-data policy {path}: families.{name}"
    if not isinstance(body, dict):
        raise PolicyError(f"{where}: expected a mapping")
    unknown = set(body) - FAMILY_KEYS
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; expected {', '.join(sorted(FAMILY_KEYS))}")
    if not body.get("why"):
        raise PolicyError(f"{where}: `why` is required (the rule that makes this family sensitive)")
    lowered = ("names", "product_names", "product_categories")
    lists = {key: tuple(str(v).strip().lower() if key in lowered else str(v).strip() for v in (body.get(key) or ()))
             for key in FAMILY_KEYS - {"label", "why"}}
    for entry in lists["icd10"]:
        _icd10_bounds(where, entry)
    for key in ("names", "product_names"):
        for pattern in lists[key]:
            if "\\" in pattern or "'" in pattern:
                raise PolicyError(f"{where}.{key}: pattern {pattern!r} may not hold a backslash or a quote "
                                  "(it runs as SQL on DuckDB and Spark alike)")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise PolicyError(f"{where}.{key}: pattern {pattern!r} is not a regular expression ({exc})") from None
    return Family(name, str(body.get("label") or name), " ".join(str(body["why"]).split()), **lists)


def _programme(path: Path, name: str, body, families: set[str]) -> CareProgramme:
    where = f"sensitive-data policy {path}: care_programmes.{name}"
    if not isinstance(body, dict) or set(body) - PROGRAMME_KEYS or not body.get("family") or not body.get("purpose"):
        raise PolicyError(f"{where}: expected a mapping with `family` and `purpose` (and an optional `label`)")
    if body["family"] not in families:
        raise PolicyError(f"{where}: family {body['family']!r} is not one of the policy's families")
    return CareProgramme(name, body["family"], str(body["purpose"]).strip().lower(), str(body.get("label") or name))


def _icd10_bounds(where: str, entry: str) -> tuple[str, str]:
    """An ICD-10 entry as (low, high) normalized prefixes of equal length."""
    low, _, high = entry.upper().replace(" ", "").partition("-")
    high = high or low
    for code in (low, high):
        if not ICD10_PREFIX.match(code):
            raise PolicyError(f"{where}.icd10: {entry!r} is not an ICD-10 code, prefix or range (e.g. F10-F19, Z20.6)")
    low, high = low.replace(".", ""), high.replace(".", "")
    if len(low) != len(high) or low > high:
        raise PolicyError(f"{where}.icd10: range {entry!r} needs two prefixes of one length, low first")
    return low, high


def _case(branches) -> str:
    whens = " ".join(f"WHEN {condition} THEN {sql_literal(value)}" for condition, value in branches
                     if condition != "false")
    return f"CASE {whens} END" if whens else "CAST(NULL AS VARCHAR)"


def _in(expr: str, values: tuple[str, ...]) -> str:
    return f"{expr} IN ({sql_list(values)})" if values else "false"


def _names(patterns: tuple[str, ...], text: str) -> str:
    return f"regexp_matches(lower({text}), {sql_literal('|'.join(patterns))})" if patterns else "false"


def _code_match(family: Family, code: str) -> str:
    normalized = NORMALIZED_CODE.format(code=code)
    ranges = []
    for entry in family.icd10:
        low, high = _icd10_bounds(family.name, entry)
        prefix = f"substr({normalized}, 1, {len(low)})"
        ranges.append(f"{prefix} = {sql_literal(low)}" if low == high
                      else f"{prefix} BETWEEN {sql_literal(low)} AND {sql_literal(high)}")
    exact = _in(f"trim({code})", family.snomed + family.omop)
    parts = [p for p in (*ranges, exact) if p != "false"]
    return f"({' OR '.join(parts)})" if parts else "false"


def _condition_match(family: Family, code: str, name: str) -> str:
    parts = [p for p in (_code_match(family, code), _names(family.names, name)) if p != "false"]
    return f"({' OR '.join(parts)})" if parts else "false"


def _product_match(family: Family, product_id: str, name: str, category: str, description: str) -> str:
    parts = [p for p in (_in(product_id, family.product_ids), _in(f"lower({category})", family.product_categories),
                         _names(family.product_names, f"concat_ws(' ', {name}, {description})")) if p != "false"]
    return f"({' OR '.join(parts)})" if parts else "false"
