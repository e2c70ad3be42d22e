#!/usr/bin/env bash
# Real programs give the same output under the host as without it.
# usage: real_programs.sh LIBHAKMEM [CONFIG]   (CONFIG empty: embedded default)
set -u
lib=$1
config=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

under_host() {
  if [ -n "$config" ]; then
    LD_PRELOAD="$lib" HAKMEM_CONFIG="$config" "$@"
  else
    LD_PRELOAD="$lib" "$@"
  fi
}

compare() { # name, then the command
  local name=$1; shift
  "$@" > "$work/$name.expected" 2>&1; local rc1=$?
  under_host "$@" > "$work/$name.actual" 2>&1; local rc2=$?
  if [ $rc1 -ne $rc2 ] || ! cmp -s "$work/$name.expected" "$work/$name.actual"; then
    echo "FAIL $name: exit $rc1 vs $rc2 under hakmem"
    diff "$work/$name.expected" "$work/$name.actual" | head -20
    fail=1
  else
    echo "ok   $name"
  fi
}

py=$(command -v python3)
cat > "$work/alloc.py" <<'PY'
import collections, json, random
random.seed(7)
d = {}
for i in range(200000):
    d[str(i)] = [i] * (i % 17)
    if i % 3 == 0:
        d.pop(str(i // 2), None)
words = collections.Counter("".join(random.choice("abcde") for _ in range(random.randint(1, 8))) for _ in range(100000))
blob = json.dumps({k: v for k, v in list(d.items())[:5000]})
print(len(d), sum(len(v) for v in d.values()), words.most_common(3), len(blob), len(json.loads(blob)))
print(sum(len(str(i)) for i in range(10**6)))
PY
cat > "$work/threads.py" <<'PY'
import threading
out = [0] * 8
def work(k):
    acc = []
    for i in range(60000):
        acc.append(bytes(i % 300))
        if len(acc) > 500:
            acc = acc[250:]
    out[k] = sum(len(a) for a in acc)
ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
print(out)
PY
compare python_alloc "$py" "$work/alloc.py"
compare python_threads "$py" "$work/threads.py"

if command -v sqlite3 >/dev/null; then
  "$py" - "$work/gen.sql" <<'PY'
import random, sys
random.seed(3)
with open(sys.argv[1], "w") as f:
    f.write("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL);\nBEGIN;\n")
    for i in range(50000):
        f.write("INSERT INTO t(name, v) VALUES('%s', %f);\n" % ("n%d" % random.randint(0, 999), random.random()))
    f.write("COMMIT;\nCREATE INDEX ix ON t(name);\n")
PY
  rm -f "$work/a.db" "$work/b.db"
  sqlite3 "$work/a.db" < "$work/gen.sql"
  under_host sqlite3 "$work/b.db" < "$work/gen.sql"
  q="SELECT name, count(*), round(sum(v), 6) FROM t GROUP BY name ORDER BY 2 DESC, 1 LIMIT 20; SELECT count(*) FROM t WHERE v > 0.5;"
  compare sqlite_query sqlite3 "$work/a.db" "$q"
  compare sqlite_built_under_host sqlite3 "$work/b.db" "$q"
else
  echo "FAIL sqlite3 is not installed"; fail=1
fi

"$py" -c "
import random
random.seed(11)
print('\n'.join('%08d %s' % (random.randint(0, 10**8), 'x' * random.randint(0, 60)) for _ in range(300000)))
" > "$work/lines.txt"
compare sort_lines sort "$work/lines.txt"
compare sort_numeric sort -n -k1,1 -r "$work/lines.txt"
compare awk_sum awk '{ s += length($2); c[substr($1, 1, 2)]++ } END { print s; for (k in c) n++; print n }' "$work/lines.txt"

exit $fail
