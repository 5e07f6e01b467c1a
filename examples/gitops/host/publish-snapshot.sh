#!/bin/sh
# Publish what this host's kernel holds for the apply set, so that pull requests
# are planned against it (`cnm plan --observed`). Pushes to the branch
# snapshots/<hostname>, which the repository's CI merges into snapshots/ (or
# point SNAPSHOT in the workflow at wherever you publish it).
set -eu
repo=/srv/cnm/repo
host=$(hostname -s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cnm observe --set web -o json > "$work/$host.json"
git -C "$repo" fetch --quiet origin
git -C "$repo" worktree add --quiet --force -B "snapshots/$host" "$work/tree" origin/main
cp "$work/$host.json" "$work/tree/snapshots/$host.json"
if ! git -C "$work/tree" diff --quiet; then
  git -C "$work/tree" commit --quiet -am "snapshot of $host"
  git -C "$work/tree" push --quiet --force origin "snapshots/$host"
fi
git -C "$repo" worktree remove --force "$work/tree"
