#!/usr/bin/env bash
# setuid programs: the host ignores HAKMEM_CONFIG, HAKMEM_SET and
# HAKMEM_BOX_PATH (secure_getenv) and loads boxes only from the folder of
# libhakmem.so.
#
# usage: setuid.sh PROBE LIB_DIR      (PROBE: rel_setuid_probe)
#
# AT_SECURE is set when the effective uid differs from the real one, so the
# probe is copied, given to `nobody` with the setuid bit, and run by another
# unprivileged uid through setpriv. That needs root (CI runs as root) and a
# file system without nosuid. If either is missing the test FAILS: a skipped
# setuid test would silently stop guarding this.
set -u
probe=$1 lib_dir=$2
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "must run as root to make a setuid binary (chown to nobody); run the suite as root"
command -v setpriv > /dev/null || fail "setpriv (util-linux) is needed to run the probe as another user"
owner=65534 runner=4242 # nobody, and a uid with no account

work=$(mktemp -d /tmp/hakmem-setuid.XXXXXX) || fail "mktemp"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
cp "$probe" "$work/probe"
chown "$owner:$owner" "$work/probe"
chmod 4755 "$work/probe"
# What a hostile environment points at: a broken config, and fake boxes with
# the real names that would fail to load.
printf '[host]\nnot_a_key = 1\n' > "$work/broken.ini"
mkdir "$work/fake_boxes"
for f in "$lib_dir"/hakbox_*.so; do
  echo "not a shared object" > "$work/fake_boxes/$(basename "$f")"
done
chmod -R a+rX "$work"
setpriv --reuid=$runner --regid=$runner --clear-groups test -r "$lib_dir/libhakmem.so" ||
  fail "uid $runner cannot read $lib_dir/libhakmem.so: the build tree must be readable by other users"
hostile=("HAKMEM_CONFIG=$work/broken.ini" "HAKMEM_SET=box.nothing.x=1" "HAKMEM_BOX_PATH=$work/fake_boxes")

# Control: without the setuid bit the same environment stops the program
# before main with a config error (exit 78). Otherwise the test below would
# prove nothing.
cp "$probe" "$work/plain_probe"
chmod 755 "$work/plain_probe"
out=$(setpriv --reuid=$runner --regid=$runner --clear-groups env "${hostile[@]}" "$work/plain_probe" plain 2>&1)
rc=$?
[ $rc -eq 78 ] || fail "control run (not setuid) exited $rc, expected 78 (config error): $out"
echo "ok   control: a normal program with this environment stops: $(echo "$out" | head -1)"

out=$(setpriv --reuid=$runner --regid=$runner --clear-groups env "${hostile[@]}" "$work/probe" secure 2>&1)
rc=$?
if [ $rc -ne 0 ]; then
  echo "$out"
  mount_opts=$(findmnt -n -o OPTIONS -T "$work" 2>/dev/null)
  case ",$mount_opts," in
    *,nosuid,*) fail "$work is on a nosuid file system: the setuid bit is ignored there" ;;
  esac
  fail "the setuid probe exited $rc"
fi
echo "ok   $out"
