"""`python -m medmkt_assets.demo_data --patients N --seed S --out DIR [--format F [--flavour V]]`.

--format csv or parquet writes the canonical tables; synthea, fhir or omop writes the
(clean) world as that export, with --flavour picking the version: synthea 2 or 3
(default 3), fhir bulk or bundles (default bulk), omop 5.3 or 5.4 (default 5.4).
"""
from __future__ import annotations

import argparse
import json
import time

from medmkt_assets.demo_data import generate, generate_in_layout

# export format → {flavour: layout}, the first flavour being the default
FLAVOURS = {
    "synthea": {"3": "synthea-3", "2": "synthea-2"},
    "fhir": {"bulk": "fhir-bulk", "bundles": "fhir-bundles"},
    "omop": {"5.4": "omop-5.4", "5.3": "omop-5.3"},
}


def layout_for(fmt: str, flavour: str | None) -> str | None:
    """The formats.LAYOUTS name for an export format and flavour; None for canonical csv/parquet."""
    if fmt not in FLAVOURS:
        if flavour is not None:
            raise ValueError(f"--flavour applies to {', '.join(FLAVOURS)}, not to --format {fmt}")
        return None
    choices = FLAVOURS[fmt]
    chosen = flavour if flavour is not None else next(iter(choices))
    if chosen not in choices:
        raise ValueError(f"--format {fmt} has flavours {', '.join(choices)}, not {flavour!r}")
    return choices[chosen]


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, write the world (canonical or as an export) and print its manifest."""
    parser = argparse.ArgumentParser(description="Write demo source tables (and their truth in _truth/).")
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--products", type=int, default=120, help="catalog size (rounded up to a multiple of 10, at least 120: every named product)")
    parser.add_argument("--out", default="data/raw")
    parser.add_argument("--format", choices=("csv", "parquet", *FLAVOURS), default="csv",
                        help="canonical csv/parquet, or the world written as a synthea, fhir or omop export")
    parser.add_argument("--flavour", help="synthea: 2 or 3 (default 3); fhir: bulk or bundles (default bulk); "
                                          "omop: 5.3 or 5.4 (default 5.4)")
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--no-bad-rows", action="store_true",
                        help="leave out the planted bad rows (exports never carry them)")
    parser.add_argument("--order-volume", type=float, default=1.0,
                        help="scale of orders per patient (1.0: about 14 order lines per patient, 1.43: about 20)")
    args = parser.parse_args(argv)
    try:
        layout = layout_for(args.format, args.flavour)
    except ValueError as exc:
        parser.error(str(exc))
    began = time.perf_counter()
    common = {"products": args.products, "chunk_size": args.chunk_size, "order_volume": args.order_volume}
    if layout is None:
        manifest = generate(args.out, patients=args.patients, seed=args.seed, fmt=args.format,
                            with_bad_rows=not args.no_bad_rows, **common)
        shown = ("patients", "products", "format", "rows", "seconds")
    else:
        manifest = generate_in_layout(args.out, layout, patients=args.patients, seed=args.seed, **common)
        manifest["seconds"] = round(time.perf_counter() - began, 2)
        shown = ("patients", "products", "layout", "files", "seconds")
    print(json.dumps({k: manifest[k] for k in shown}, indent=2))


if __name__ == "__main__":
    main()
