import sys
from pathlib import Path

# tests/builders.py is imported as `builders` by test modules.
sys.path.insert(0, str(Path(__file__).parent))
