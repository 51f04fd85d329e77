#!/bin/bash
# Install everything the tests need (Debian packages, the cloud in a box, CloudPulse's venv),
# then run the unit tests and the integration tests against the real cloud in a box.
# Extra arguments go to pytest (e.g. tools/run-tests.sh tests/unit -k conf).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash tools/install-system-packages.sh
bash tools/cloudbox/cloudbox.sh install
VENV=$(bash tools/venv.sh)
export PATH="$VENV/bin:$PATH"
if [ $# -eq 0 ]; then set -- tests; fi
# The box is started by the tests' session fixture and stopped by it (CLOUDBOX_KEEP=1 keeps it).
exec "$VENV/bin/python" -m pytest -v -rs --durations=15 -p no:cacheprovider "$@"
