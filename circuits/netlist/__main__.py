"""``python -m circuits.netlist [README]``: rewrite the parameter tables of the format reference."""
import sys
from pathlib import Path

from .schema import update_readme

target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[2] / "netlists" / "README.md"
print("updated:" if update_readme(target) else "up to date:", target)
