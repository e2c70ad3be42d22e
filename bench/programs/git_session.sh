#!/usr/bin/env bash
# hakmem bench real_git: a git session in SCRATCH on a copy of TREE: init,
# commits on two branches, a merge, gc (pack-objects and repack run as
# child processes), then everything that shows the repository is intact.
# Identity and dates come from the environment (runner/programs.py), so the
# output is the same on every run.
set -e
tree=$1 scratch=$2
cd "$scratch"
git init -q -b main repo
cd repo
cp -r "$tree"/. .
git add -A
git commit -q -m "initial import"
for round in 1 2 3 4 5 6; do
  sed -i "s/line 1 /line one (round $round) /" dir0$round/*.txt
  printf 'round %d\n' "$round" >> big0.bin
  git add -A
  git commit -q -m "round $round"
  git status --short | wc -l
done
git checkout -q -b side HEAD~2
tee -a dir09/*.txt <<< "side change" > /dev/null
git rm -q -r dir10
git commit -q -a -m "side: append and remove"
git checkout -q main
git merge -q --no-ff side -m "merge side"
git tag -a v1 -m "version 1"
git -c pack.threads=2 gc -q --prune=now
git fsck --full --strict 2>&1
git count-objects -v | grep -E '^(count|in-pack|packs|garbage|size-garbage):'
git log --format='%H %an <%ae> %ad %s' --date=iso --stat --graph
git rev-parse HEAD HEAD^{tree} v1
git diff --stat HEAD~3 HEAD
git archive --format=tar HEAD | md5sum
git ls-files -s | md5sum
git grep -c 'line one' | tail -3
git blame -s dir01/file00.txt | head -5
