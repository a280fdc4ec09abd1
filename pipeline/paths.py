"""Where the project's data files live.

`sql/`, `expectations/`, `reference/` and `inputs/` sit at the top of the repository, beside the
package, so that finance staff can read and edit them. RECON_HOME overrides the location when the
package is installed somewhere else.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("RECON_HOME", Path(__file__).resolve().parent.parent))
SQL_DIR = ROOT / "sql"
CHECKS_DIR = SQL_DIR / "checks"
EXPECTATIONS_DIR = ROOT / "expectations"
REFERENCE_DIR = ROOT / "reference"
CONFIG_DIR = ROOT / "config"
