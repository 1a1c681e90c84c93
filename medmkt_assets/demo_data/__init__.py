"""Demo data: a synthetic healthcare-marketing world with known answers (see generator.py)."""
from medmkt_assets.demo_data.generator import generate

__all__ = ["generate"]
