# Inputs of the real-program cases, the same on every run.
import os, random, sys

out = sys.argv[1]
rng = random.Random(20250102)

# lines.txt: "number word text" lines for sort and awk.
words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 6))) for _ in range(3000)]
with open(os.path.join(out, "lines.txt"), "w") as f:
    for i in range(120000):
        f.write("%d %s %s\n" % (rng.randint(0, 10**7), rng.choice(words),
                                "".join(rng.choice("aeioubcdfg") for _ in range(rng.randint(0, 50)))))

# tree/: a source tree for git, small files and a few big ones.
tree = os.path.join(out, "tree")
for d in range(12):
    os.makedirs(os.path.join(tree, "dir%02d" % d), exist_ok=True)
    for k in range(25):
        lines = ["line %d of file %d/%d: %s" % (n, d, k, rng.choice(words)) for n in range(rng.randint(1, 400))]
        with open(os.path.join(tree, "dir%02d" % d, "file%02d.txt" % k), "w") as f:
            f.write("\n".join(lines) + "\n")
for k in range(3):
    with open(os.path.join(tree, "big%d.bin" % k), "wb") as f:
        f.write(rng.randbytes(200000))
