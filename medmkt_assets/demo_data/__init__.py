"""Demo data: a synthetic healthcare-marketing world with known answers (see generator.py)."""
from medmkt_assets.demo_data.formats import generate_in_layout, write_layout
from medmkt_assets.demo_data.generator import generate

__all__ = ["generate", "generate_in_layout", "write_layout"]
