"""Spread and significance for few runs: a bootstrap confidence interval of
the median, a bootstrap interval of the ratio of two medians, and a
Mann-Whitney U test (exact, ties included) for the verdict.

Why these: with 5-10 interleaved runs per cell the distribution is unknown
and often skewed (a loaded machine slows some runs a lot and speeds none),
so nothing here assumes normality. The U test compares ranks only; its
exact permutation distribution is computed, not approximated, up to 30
runs in all (a normal approximation with tie correction above). Every resampling is seeded from the cell's name, so the same
runs always give the same intervals and verdicts (standard library only).
"""

import math
import random
import zlib

BOOTSTRAP_RESAMPLES = 2000
DEFAULT_SEED = 1
EXACT_LIMIT = 30  # runs in both samples together; above, a normal approximation


def cell_seed(*names, seed=DEFAULT_SEED):
    """A deterministic seed per cell: the same whatever order cells run in."""
    return zlib.crc32(("\0".join(str(n) for n in names) + "\0%d" % seed).encode())


def median(values):
    s = sorted(values)
    n = len(s)
    if not n:
        return None
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def quantile(sorted_values, q):
    """Linear interpolation between order statistics (q in [0, 1])."""
    n = len(sorted_values)
    if n == 1:
        return sorted_values[0]
    pos = q * (n - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def bootstrap_median_ci(values, confidence=0.95, seed=DEFAULT_SEED,
                        resamples=BOOTSTRAP_RESAMPLES):
    """Percentile bootstrap interval of the median: (lo, hi)."""
    if not values:
        return None
    if len(values) == 1 or min(values) == max(values):
        return (values[0], values[0]) if len(values) == 1 else (min(values), max(values))
    rng = random.Random(seed)
    n = len(values)
    meds = sorted(median([values[rng.randrange(n)] for _ in range(n)])
                  for _ in range(resamples))
    tail = (1.0 - confidence) / 2.0
    return quantile(meds, tail), quantile(meds, 1.0 - tail)


def bootstrap_ratio_ci(values, base, confidence=0.95, seed=DEFAULT_SEED,
                       resamples=BOOTSTRAP_RESAMPLES):
    """Percentile bootstrap interval of median(values) / median(base), each
    sample resampled on its own. None when a resampled base median is 0."""
    if not values or not base:
        return None
    rng = random.Random(seed)
    n, m = len(values), len(base)
    ratios = []
    for _ in range(resamples):
        b = median([base[rng.randrange(m)] for _ in range(m)])
        if not b:
            return None
        ratios.append(median([values[rng.randrange(n)] for _ in range(n)]) / b)
    ratios.sort()
    tail = (1.0 - confidence) / 2.0
    return quantile(ratios, tail), quantile(ratios, 1.0 - tail)


def _doubled_midranks(a, b):
    """Twice the midrank of every value of a + b (integers even with ties)."""
    pooled = sorted(a + b)
    rank2 = {}
    i, n = 0, len(pooled)
    while i < n:
        j = i
        while j + 1 < n and pooled[j + 1] == pooled[i]:
            j += 1
        rank2[pooled[i]] = (i + 1) + (j + 1)
        i = j + 1
    return rank2, [rank2[v] for v in pooled]


def mann_whitney(a, b):
    """Two-sided Mann-Whitney U test of a against b.

    Returns (p, direction): direction +1 when a tends to be larger than b,
    -1 when smaller, 0 when neither (equal rank sums). Exact permutation
    distribution of a's rank sum (ties as midranks) up to EXACT_LIMIT runs,
    normal approximation with tie correction above."""
    n1, n2 = len(a), len(b)
    if not n1 or not n2:
        return 1.0, 0
    rank2, pooled = _doubled_midranks(list(a), list(b))
    n = n1 + n2
    w2 = sum(rank2[v] for v in a)          # twice a's rank sum
    mean2 = n1 * (n + 1)                   # twice its expectation
    direction = (w2 > mean2) - (w2 < mean2)
    if direction == 0:
        return 1.0, 0
    dev = abs(w2 - mean2)
    if n <= EXACT_LIMIT:
        # counts[k][s]: subsets of k pooled values whose doubled ranks sum to s
        counts = [dict() for _ in range(n1 + 1)]
        counts[0][0] = 1
        for r in pooled:
            for k in range(min(n1, n) - 1, -1, -1):
                row = counts[k]
                if not row:
                    continue
                nxt = counts[k + 1]
                for s, c in row.items():
                    nxt[s + r] = nxt.get(s + r, 0) + c
        total = sum(counts[n1].values())
        extreme = sum(c for s, c in counts[n1].items() if abs(s - mean2) >= dev)
        return min(1.0, extreme / total), direction
    # Normal approximation of U with tie correction (and continuity).
    u = (w2 / 2.0) - n1 * (n1 + 1) / 2.0
    mu = n1 * n2 / 2.0
    ties = {}
    for r in pooled:
        ties[r] = ties.get(r, 0) + 1
    tie_term = sum(t ** 3 - t for t in ties.values()) / float(n * (n - 1))
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if var <= 0:
        return 1.0, 0
    z = (abs(u - mu) - 0.5) / math.sqrt(var)
    p = math.erfc(max(z, 0.0) / math.sqrt(2.0))
    return min(1.0, p), direction


# Words for a verdict, per metric: (word when larger, word when smaller).
WORDS_THROUGHPUT = ("faster", "slower")
WORDS_MEMORY = ("larger", "smaller")
WITHIN_NOISE = "within noise"


def verdict(values, base, confidence=0.95, words=WORDS_THROUGHPUT):
    """(word, p): "faster"/"slower" (or the given words) when the U test
    rejects equal distributions at the confidence level, else "within
    noise". With fewer than 4 runs a side no difference can reach 95%."""
    p, direction = mann_whitney(values, base)
    if p < 1.0 - confidence and direction:
        return (words[0] if direction > 0 else words[1]), p
    return WITHIN_NOISE, p


def min_runs_for(confidence):
    """The fewest runs per side for which a complete separation of two
    samples is significant (exact U test, two-sided)."""
    n = 1
    while n < 50:
        if 2.0 / math.comb(2 * n, n) < 1.0 - confidence:
            return n
        n += 1
    return n


class Spread:
    """What a table shows for one metric of one cell."""

    def __init__(self, values, confidence=0.95, seed=DEFAULT_SEED):
        self.values = list(values)
        self.n = len(self.values)
        self.median = median(self.values)
        self.min = min(self.values) if self.values else None
        self.max = max(self.values) if self.values else None
        self.ci = bootstrap_median_ci(self.values, confidence, seed) if self.values else None

    def rel_width(self):
        """Width of the interval as a fraction of the median (0 when none)."""
        if not self.ci or not self.median:
            return 0.0
        return (self.ci[1] - self.ci[0]) / abs(self.median)
