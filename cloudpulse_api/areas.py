"""The API's areas, each a module owning its routes (a Flask `blueprint`), its part of
the OpenAPI document (`openapi_paths(check_types)`, `OPENAPI_SCHEMAS`) and the policy
rules it enforces (cloudpulse_api/policies.py):

    checks    /cpulse/check, /cpulse/result(s), /cpulse/types: shared by every check type
    operator  /cpulse/operator/...: the control plane as the operator checks see it
    webhooks  /cpulse/webhooks: who receives the health transitions (docs/notifications.md)
    availability  /cpulse/availability, /cpulse/metrics (and /metrics, its
              `root_blueprint`): the history against the SLO (docs/availability.md)
    status    /cpulse/status: each check type's verdict now, per cloud
    upgrade   /cpulse/snapshot(s): what an upgrade check verifies (docs/upgrade.md)"""

from cloudpulse_api import availability
from cloudpulse_api import checks
from cloudpulse_api import operator
from cloudpulse_api import status
from cloudpulse_api import upgrade
from cloudpulse_api import webhooks

AREAS = (checks, operator, webhooks, availability, status, upgrade)
# Routes outside /cpulse: Prometheus' default metrics_path.
ROOT_BLUEPRINTS = (availability.root_blueprint,)
