#!/usr/bin/env python3
"""Check a telemetry JSON file with python's own parser: every bucket is
present with every counter, config and command are the expected ones.
usage: check_json.py FILE CONFIG COMMAND"""
import json
import sys

BUCKETS = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7",
           "MID", "L25", "SSM", "LARGE", "OTHER"]
COUNTERS = ["fresh_pages", "fresh_bytes", "fresh_events", "mapped_bytes",
            "map_events", "unmapped_bytes", "unmap_events", "reuse_bytes",
            "reuse_events", "refills", "refill_blocks", "drains",
            "drain_blocks", "remote_frees", "allocs", "touches_per_page"]

path, config, command = sys.argv[1:4]
with open(path, encoding="utf-8") as f:
    d = json.load(f)
assert d["hakmem_telemetry"] == 1, d.get("hakmem_telemetry")
assert d["config"] == config, (d["config"], config)
assert d["command"] == command, (d["command"], command)
assert list(d["buckets"]) == BUCKETS, list(d["buckets"])
for name, b in d["buckets"].items():
    for c in COUNTERS:
        assert c in b, (name, c)
        assert b[c] is None or isinstance(b[c], (int, float)), (name, c, b[c])
    assert b["fresh_pages"] * 4096 >= b["fresh_bytes"], name
assert isinstance(d["boxes"], list)
for box in d["boxes"]:
    for c in ["name", "plugin", "allocs", "frees", "bytes_mapped", "events"]:
        assert c in box, (box.get("name"), c)
print("json ok:", path)
