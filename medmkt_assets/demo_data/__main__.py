"""`python -m medmkt_assets.demo_data --patients N --seed S --out DIR [--format csv|parquet]`."""
from __future__ import annotations

import argparse
import json

from medmkt_assets.demo_data import generate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write demo source tables (and their truth in _truth/).")
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--products", type=int, default=120, help="catalog size (rounded up to a multiple of 10)")
    parser.add_argument("--out", default="data/raw")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--no-bad-rows", action="store_true", help="leave out the planted bad rows")
    parser.add_argument("--order-volume", type=float, default=1.0,
                        help="scale of orders per patient (1.0: about 12.6 order lines per patient, 1.6: about 20)")
    args = parser.parse_args(argv)
    manifest = generate(args.out, patients=args.patients, seed=args.seed, products=args.products,
                        fmt=args.format, chunk_size=args.chunk_size, with_bad_rows=not args.no_bad_rows,
                        order_volume=args.order_volume)
    print(json.dumps({k: manifest[k] for k in ("patients", "products", "format", "rows", "seconds")}, indent=2))


if __name__ == "__main__":
    main()
