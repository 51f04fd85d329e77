#!/bin/bash
# Create or refresh CloudPulse's virtualenv from the pinned, tested set (constraints.txt).
# Prints the venv path. Reused while requirements/constraints are unchanged.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
VENV=${CLOUDPULSE_VENV:-$HOME/.cache/cloudpulse/venv}
stamp=$(cat "$top/requirements.txt" "$top/test-requirements.txt" "$top/constraints.txt" \
        "$top/setup.cfg" | sha256sum | cut -c1-16)
if [ "$(cat "$VENV/.cloudpulse-stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q --upgrade pip >&2
  "$VENV/bin/pip" install -q -c "$top/constraints.txt" -r "$top/requirements.txt" \
      -r "$top/test-requirements.txt" >&2
  echo "$stamp" > "$VENV/.cloudpulse-stamp"
fi
# The project itself, editable, so scenarios/ and task_templates/ are read from the tree.
"$VENV/bin/pip" install -q --no-deps -e "$top" >&2
echo "$VENV"
