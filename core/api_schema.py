"""OpenAPI post-processing: document the error answers every operation can give.

drf-spectacular documents only the success codes a view declares, but every operation also
answers 401 (no or bad token) and 403 (role), bad input 400, a path id that names nothing 404,
and writes 409 (a unique value taken). Clients and Schemathesis read the schema as the contract,
so the error codes and their JSON body (core.api.exception_handler) are part of it.
"""

ERROR_COMPONENT = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": (
        "Every error answer: what is wrong, a stable code, per-field messages for bad input, and for"
        " some codes the facts behind them (e.g. `deal_count` with `stage_has_deals`)."
    ),
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": True},
        "deal_count": {"type": "integer", "description": "The deals that keep a stage or pipeline."},
    },
    "required": ["detail", "code"],
}
DESCRIPTIONS = {
    "400": "Bad input: `fields` names each problem.",
    "401": "No token, or an invalid or revoked one.",
    "403": "The caller's role may not do this (to this record).",
    "404": "No such record.",
    "409": "A unique value (an email, a domain, a name) is already taken, or the record's state refuses"
    " the change (a stage that still holds deals).",
}
WRITE_METHODS = {"post", "put", "patch", "delete"}


def document_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in WRITE_METHODS | {"get", "head"}:
                continue
            codes = ["400", "401", "403"]
            if "{" in path:
                codes.append("404")
            if method in WRITE_METHODS:
                codes.append("409")
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(code, {"description": DESCRIPTIONS[code], "content": error})
    return result
