# Allocation-heavy, single thread: objects of every size class hakmem
# routes (tiny, mid, l25, large), growing buffers (realloc), cyclic garbage,
# and a working set that shrinks and grows again. Deterministic output.
import gc, hashlib, json, random, re

random.seed(1234)
digest = hashlib.sha256()

# Many small objects: dicts of lists of strings, churned.
table = {}
for i in range(40000):
    key = "k%d" % (i * 7919 % 100003)
    table[key] = [str(j) * (j % 5) for j in range(i % 11)]
    if i % 4 == 0:
        table.pop("k%d" % (i * 31 % 100003), None)
digest.update(json.dumps(sorted(table.items())[:2000]).encode())
print("table", len(table), sum(len(v) for v in table.values()))

# Blobs across every tier: 1 B .. 3 MB, kept in a sliding window.
window = []
total = 0
for i in range(1500):
    lo, hi = random.choice(((1, 1024), (1025, 53248), (53249, 2 << 20), ((2 << 20) + 1, 3 << 20)))
    n = random.randint(lo, hi) if i % 16 == 0 or hi <= 53248 else random.randint(1, 4096)
    b = bytes([i % 251]) * n
    window.append(b)
    total += len(b)
    if len(window) > 64:
        old = window.pop(random.randrange(len(window)))
        assert old[:1] == old[-1:]
print("blobs", total, sum(len(b) for b in window))

# Growing buffers: bytearray and list appends reallocate step by step.
buf = bytearray()
for i in range(100000):
    buf += b"%d," % i
digest.update(buf)
lst = []
for i in range(200000):
    lst.append(i)
print("grow", len(buf), len(lst))

# Cyclic garbage for the collector.
class Node:
    __slots__ = ("next", "payload")
for round_ in range(8):
    nodes = [Node() for _ in range(5000)]
    for k, nd in enumerate(nodes):
        nd.next = nodes[(k + 1) % len(nodes)]
        nd.payload = "x" * (k % 200)
    del nodes
    gc.collect()

# Regex and string building.
text = " ".join("w%d" % (i % 977) for i in range(100000))
words = re.findall(r"w(\d+)", text)
digest.update(",".join(sorted(set(words))).encode())
print("regex", len(words), len(set(words)))
print("digest", digest.hexdigest())
