"""Staging: typed, normalized, pseudonymized tables; bad rows quarantined with a reason."""
