"""Which columns identify a person, and where they may live (contract section 3).

The contract checker (lib.ops.contract_check), the tests and Dagster's metadata previews read
these names from here, so the rule is written down once.
"""
# Columns that identify a person directly (contract section 3). They may live only in
# schemas whose names start with raw, restricted or quarantine.
DIRECT_IDENTIFIERS = frozenset(
    {"patient_id", "full_name", "phone", "email", "address", "postal_code", "birth_date"}
)
PRIVATE_SCHEMA_PREFIXES = ("raw", "restricted", "quarantine")
# Free text written by or about a patient (it may name people) and exact dates of a life:
# kept where the analytics may need them, but never shown in Dagster metadata previews.
NOT_FOR_PREVIEW = DIRECT_IDENTIFIERS | {"patient_key", "comment", "query", "death_date"}
