#!/bin/sh
# node-problem-detector plugin: the sysprep agent's last verdict on this node.
#
#   sysprep-npd.sh [VERDICT-FILE [MAX-AGE-MINUTES]]
#
# The agent (deploy/kubernetes) writes "STATUS LINE" to VERDICT-FILE every cycle: STATUS
# 0 OK, 1 problem, 2 unknown, as this plugin exits; LINE at most 80 characters, as it
# prints. A file missing, unreadable, malformed or older than MAX-AGE-MINUTES (the agent
# stopped) is unknown, never a stale OK.
verdict=${1:-/var/lib/sysprep/npd}
max_age=${2:-15}
if [ ! -r "$verdict" ]; then
    echo "unknown: no sysprep verdict at $verdict (is the agent running?)"
    exit 2
fi
if [ -n "$(find "$verdict" -mmin "+$max_age" 2>/dev/null)" ]; then
    echo "unknown: sysprep verdict older than $max_age minutes (agent stopped?)"
    exit 2
fi
read -r status line < "$verdict" || true
case $status in
    0|1|2) echo "$line"; exit "$status" ;;
    *) echo "unknown: malformed sysprep verdict in $verdict"; exit 2 ;;
esac
