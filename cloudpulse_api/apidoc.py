"""Building blocks of the OpenAPI document (cloudpulse_api/openapi.py), for the areas
that describe their own routes next to their handlers."""

# Every route's prefix, the document's server URL; a path elsewhere names its own servers.
PREFIX = "/cpulse"
TIME = {"type": "string", "format": "date-time"}
NULLABLE_TIME = dict(TIME, nullable=True)


def json_response(schema_name, description, headers=None):
    """A JSON answer whose body is components/schemas/<schema_name>."""
    response = {"description": description, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/%s" % schema_name}}}}
    if headers:
        response["headers"] = headers
    return response


def responses(ok_status, ok, *errors):
    """The answers of an operation: `ok`, a 401 (dropped without authentication) and
    the shared error responses of `errors` (status codes)."""
    answers = {str(ok_status): ok}
    answers.update({str(code): {"$ref": "#/components/responses/%d" % code}
                    for code in (401,) + errors})
    return answers


def query(name, schema, description, required=False):
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}
