"""Progress lines on stderr and the number formats of the report.
"""

import sys


def progress(msg):
    print(msg, file=sys.stderr, flush=True)


def fmt_rate(x):
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if x >= div:
            return "%.3g%s" % (x / div, suffix)
    return "%.3g" % x


def fmt_num(x, digits=3):
    if isinstance(x, int):
        return str(x)
    if x == 0:
        return "0"
    if abs(x) >= 10 ** digits:
        return "%.0f" % x
    return "%.*g" % (digits, x)


def fmt_ratio(x):
    return "%.2fx" % x
