#!/bin/sh
# Runs the unit test binary and always ends with one "N passed, N failed" line, even when
# it crashes (a sanitizer's abort) or hangs: then it says where, from the last case the
# binary named, with the counts so far, and counts one more failure.
# Usage: tests/unit/run.sh BINARY LOGDIR   (LOGDIR/unit.log, LOGDIR/unit.stderr)
# UNIT_TIMEOUT (default 900 s) bounds the whole run; each wait inside has its own guard.
set -u
bin=$1
logs=$2
log=$logs/unit.log
err=$logs/unit.stderr
timeout "${UNIT_TIMEOUT:-900}" "$bin" >"$log" 2>"$err"
status=$?
grep -E '^(FAIL|HANG) ' "$log"
last=$(tail -n 1 "$log")
if echo "$last" | grep -qx '[0-9]* passed, [0-9]* failed'; then
	echo "$last"
	exit "$status"
fi
case $status in
124) how="hung (stopped after ${UNIT_TIMEOUT:-900} s)" ;;
*) how="crashed (status $status)" ;;
esac
at=$(grep '^case ' "$log" | tail -n 1)
name=$(echo "$at" | sed 's/^case \(.*\) (\([0-9]*\) passed, \([0-9]*\) failed so far)$/\1/')
passed=$(echo "$at" | sed -n 's/.*(\([0-9]*\) passed, [0-9]* failed so far)$/\1/p')
failed=$(echo "$at" | sed -n 's/.*([0-9]* passed, \([0-9]*\) failed so far)$/\1/p')
echo "unit: FAIL ($how in ${name:-its start-up}, see $err)"
grep -m 1 -E '^(SUMMARY|==[0-9]+==ERROR)' "$err" | sed 's/^/    /'
echo "${passed:-0} passed, $((${failed:-0} + 1)) failed"
exit 1
