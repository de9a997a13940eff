#!/usr/bin/env bash
# The standalone fake from a shell: start it, seed it, page through a message with curl.
set -euo pipefail

# Start it on a free port. Its first line on stdout is the base URL.
qstash-tasks-fake serve --port 0 --token demo-token --quiet > fake.url &
FAKE=$!
trap 'kill $FAKE; wait $FAKE' EXIT  # SIGTERM: a clean stop
until [ -s fake.url ]; do sleep 0.05; done
QSTASH_URL=$(head -n 1 fake.url)
AUTH="Authorization: Bearer demo-token"

# Seed a message with 150 generated tasks through the control endpoints.
curl -sSf -H "$AUTH" -d '{"messageId": "msg_123", "count": 150}' "$QSTASH_URL/_fake/messages" \
  > /dev/null

# Page through it as QStash serves it: 100 tasks and a cursor, then the rest.
field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }
page=$(curl -sSf -H "$AUTH" "$QSTASH_URL/v1/messages/msg_123/tasks")
echo "first page: $(echo "$page" | field '["tasks"].__len__()') tasks"
cursor=$(echo "$page" | field '["cursor"]')
page=$(curl -sSf -H "$AUTH" "$QSTASH_URL/v1/messages/msg_123/tasks?cursor=$cursor")
echo "second page: $(echo "$page" | field '["tasks"].__len__()') tasks, cursor $(echo "$page" | field '["cursor"]')"

# Plan a failure: the next request gets 503.
curl -sSf -H "$AUTH" -d '{"kind": "fail", "status": 503}' "$QSTASH_URL/_fake/faults" > /dev/null
echo "then: HTTP $(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" "$QSTASH_URL/v1/messages/msg_123/tasks")"

# What the fake saw, and whether anything went wrong.
curl -sSf -H "$AUTH" "$QSTASH_URL/_fake/calls" | field '["calls"].__len__()' | sed 's/^/calls: /'
curl -sSf -H "$AUTH" "$QSTASH_URL/_fake/problems"
echo
