"""Print near-duplicate precision/recall/F1 and the chosen threshold.

How the labelled set is built: devtools/neardup_eval.py. Run: python scripts/near_dup_eval.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.neardup_eval import main

if __name__ == "__main__":
    main()
