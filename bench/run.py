"""Run every benchmark in turn (`make bench`); each prints its own figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCENARIOS = [
    ["http_client.py", "2000"],
    ["shop.py", "--orders", "2000", "--db", "sqlite"],
    ["products_listing.py"],
    ["storefront.py", "--requests", "1000"],
    ["hardening.py"],
]

for scenario in SCENARIOS:
    if not (HERE / scenario[0]).exists():
        continue
    print(f"\n## {' '.join(scenario)}", flush=True)
    subprocess.run([sys.executable, str(HERE / scenario[0]), *scenario[1:]], check=True)
