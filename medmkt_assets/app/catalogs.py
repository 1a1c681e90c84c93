"""The app's gettext catalogs: `locale/<lang>/LC_MESSAGES/medmkt.po`, compiled to `.mo` beside them.

Every word the app shows lives there: its own texts under their keys (`nav.segments`, ...) and
the words of the data (categories, channels, reasons, segment-label parts, ...) under the
message context `term`. The `.mo` files are shipped compiled; after editing a `.po`, run
`python -m medmkt_assets.app.catalogs` (or `make catalogs`) and commit both: a test holds the
`.mo` to its `.po`.
"""
from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "medmkt"
TERM = "term"  # message context of the data's words


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_path(lang: str) -> Path:
    return po_path(lang).with_suffix(".mo")


def read_catalog(path: Path) -> Catalog:
    """A `.po` or `.mo` catalog."""
    with path.open("rb") as handle:
        return read_mo(handle) if path.suffix == ".mo" else read_po(handle)


def messages(catalog: Catalog) -> dict[tuple[str | None, str], str]:
    """(context, msgid) -> translation of every message with an id."""
    return {(m.context, m.id): m.string for m in catalog if m.id}


def compile_catalogs(langs: list[str]) -> list[Path]:
    """Write each language's `.mo` from its `.po`; returns the files written."""
    written = []
    for lang in langs:
        catalog = read_catalog(po_path(lang))
        with mo_path(lang).open("wb") as handle:
            write_mo(handle, catalog)
        written.append(mo_path(lang))
    return written


def languages() -> list[str]:
    return sorted(p.name for p in LOCALE_DIR.iterdir() if po_path(p.name).is_file())


if __name__ == "__main__":
    for path in compile_catalogs(sys.argv[1:] or languages()):
        print(f"compiled {path}")
