"""The canonical source tables of the data contract (section 2), in one place.

Ingestion, staging, the demo generator's tests and the adapters all read these
names from here so the contract is written down once.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceTable:
    name: str
    columns: tuple[str, ...]
    required_columns: tuple[str, ...]
    required: bool = False


SOURCE_TABLES: dict[str, SourceTable] = {
    t.name: t
    for t in (
        SourceTable(
            "patients",
            ("patient_id", "full_name", "gender", "birth_date", "phone", "email", "address",
             "city", "region", "postal_code", "insurance_type", "registered_at", "death_date"),
            ("patient_id",),
            required=True,
        ),
        SourceTable(
            "products",
            ("product_id", "name", "category", "kind", "unit_price", "rx_only", "description"),
            ("product_id", "name", "category"),
            required=True,
        ),
        SourceTable(
            "orders",
            ("order_id", "line_no", "patient_id", "product_id", "ordered_at", "quantity",
             "unit_price", "channel", "facility_id"),
            ("order_id", "patient_id", "product_id", "ordered_at"),
            required=True,
        ),
        SourceTable(
            "diagnoses",
            ("patient_id", "condition_code", "condition_name", "diagnosed_at"),
            ("patient_id", "condition_code"),
        ),
        SourceTable(
            "campaigns",
            ("campaign_id", "name", "purpose", "channel", "target_category", "start_date",
             "end_date", "cost_per_contact"),
            ("campaign_id",),
        ),
        SourceTable(
            "campaign_contacts",
            ("campaign_id", "patient_id", "arm", "contacted_at", "opened", "clicked", "converted",
             "converted_at", "revenue"),
            ("campaign_id", "patient_id", "arm"),
        ),
        SourceTable(
            "consents",
            ("patient_id", "purpose", "channel", "status", "recorded_at"),
            ("patient_id", "purpose", "status", "recorded_at"),
        ),
        SourceTable(
            "surveys",
            ("patient_id", "responded_at", "satisfaction", "nps", "comment"),
            ("patient_id",),
        ),
        SourceTable(
            "events",
            ("patient_id", "occurred_at", "event_type", "source", "product_id", "category", "query"),
            ("occurred_at", "event_type"),
        ),
    )
}

GENDERS = ("F", "M", "U")
ORDER_CHANNELS = ("store", "online", "app", "phone", "clinic")
CAMPAIGN_CHANNELS = ("sms", "email", "app_push", "call", "wechat")
CAMPAIGN_PURPOSES = ("marketing", "refill_reminder", "health_education")
CONTACT_ARMS = ("treatment", "control")
CONSENT_STATUSES = ("granted", "revoked")
PRODUCT_KINDS = ("service", "drug", "device", "test")
EVENT_TYPES = ("page_view", "search", "click", "share")
EVENT_SOURCES = ("web", "app", "search", "social")

# A timestamp this far ahead of the export's as-of time (lib.sources.as_of) is "in the future"
# (clocks and time zones differ by hours).
FUTURE_TOLERANCE = "INTERVAL 1 DAY"
