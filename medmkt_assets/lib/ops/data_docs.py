"""Data Docs that work offline: the pages Great Expectations renders load Bootstrap, jQuery,
bootstrap-table, Font Awesome and Vega from public CDNs and its logo from a cloud bucket, so
without the internet the index is unstyled and its table (drawn by bootstrap-table) empty.

`make_self_contained` copies the vendored copies of those files (data_docs_static/, see its
README) into the site as `static/vendor/` and points the rendered pages at them by relative
paths, so the site works from any folder or server. Links to documentation pages stay links.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

VENDOR = Path(__file__).with_name("data_docs_static")
VENDOR_IN_SITE = "static/vendor"
# Every CDN asset GX 1.x links (great_expectations/render/view/templates), by its local copy.
CDN_ASSETS = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "js/bootstrap.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "css/bootstrap-prefers-dark.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "css/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "js/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "js/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "css/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "css/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "js/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "js/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "js/popper.min.js",
    "https://cdn.jsdelivr.net/npm/vega@5": "js/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "js/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "js/vega-embed.min.js",
}
# The logo GX loads from its bucket (with a tracking query string); the site ships the same image.
BUCKET_LOGO = re.compile(r"https://great-expectations-web-assets\.s3[^\"']*/logo-long\.png[^\"']*")
# A link to the site's own static/ folder, relative from the page (`../../static/...`).
SITE_STATIC = re.compile(r"""((?:src|href)=["'])(?:\.\./)*static/""")
# What a page may still fetch from elsewhere once rewritten: nothing (links to pages are fine).
REMOTE_ASSET = re.compile(r"""<(?:script|img)[^>]*\ssrc=["']https?://|<link[^>]*\shref=["']https?://[^"']*\.css""")


def localize(html: str, static: str) -> str:
    """A rendered page pointing at the site's own copies; `static`: the relative path from the
    page's folder to the site's `static/` folder."""
    for url, local in CDN_ASSETS.items():
        html = re.sub(re.escape(url) + r"(?=[\"'])", f"{static}/vendor/{local}", html)
    # GX counts a page's depth without the folders a dotted suite name ("staging.orders") adds
    html = SITE_STATIC.sub(lambda m: f"{m[1]}{static}/", html)
    return BUCKET_LOGO.sub(f"{static}/images/logo-long.png", html)


def make_self_contained(site_root: Path, pages: list[Path] | None = None) -> list[Path]:
    """Copy the vendored assets into the site and rewrite `pages` (every .html of the site when
    None); returns the pages that changed."""
    for source in VENDOR.rglob("*"):  # once per site (and after an upgrade), not per validation
        target = site_root / VENDOR_IN_SITE / source.relative_to(VENDOR)
        if source.is_file() and source.name != "README.md" and (
                not target.is_file() or target.stat().st_size != source.stat().st_size):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    changed = []
    for page in pages if pages is not None else sorted(site_root.rglob("*.html")):
        if not page.is_file():
            continue
        html = page.read_text(encoding="utf-8")
        static = Path(os.path.relpath(site_root / "static", page.parent)).as_posix()
        rewritten = localize(html, static)
        if rewritten != html:
            page.write_text(rewritten, encoding="utf-8")
            changed.append(page)
    return changed


def remote_assets(html: str) -> list[str]:
    """The scripts, images and stylesheets a page would still load from the internet."""
    return REMOTE_ASSET.findall(html)
