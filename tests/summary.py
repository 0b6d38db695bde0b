#!/usr/bin/env python3
"""Prints the closing line of a test run ('N passed, N failed, N skipped') from meson's test logs."""
import json
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            result = json.loads(line)["result"]
            if result == "OK":
                passed += 1
            elif result in ("SKIP",):
                skipped += 1
            elif result == "EXPECTEDFAIL":
                passed += 1
            else:
                failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
