"""The readable docs page at ``/api/v1/docs``: the OpenAPI document rendered on the server.

Plain HTML and one stylesheet of our own, no JavaScript: it works under the same strict
Content-Security-Policy as the console and needs nothing from a CDN.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from wanotify.ops.web.api.openapi import REF, document

METHOD_ORDER = ("post", "get")


@cache
def page() -> str:
    """The page (built once: it depends on code only)."""
    env = Environment(loader=PackageLoader("wanotify.ops.web.api", "templates"), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    spec = document()
    return env.get_template("docs.html").render(info=spec["info"], operations=_operations(spec),
                                                schemas=_schemas(spec["components"]["schemas"]))


def _operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for path, methods in spec["paths"].items():
        for method in METHOD_ORDER:
            if method in methods:
                op = methods[method]
                body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
                found.append({"method": method.upper(), "path": path, "summary": op["summary"],
                              "description": op.get("description", ""), "parameters": op.get("parameters", []),
                              "body": _type_of(body) if body else None,
                              "responses": [{"code": c, "description": r["description"],
                                             "schema": _type_of(r["content"]["application/json"]["schema"]),
                                             "linked": "$ref" in r["content"]["application/json"]["schema"]}
                                            for c, r in op["responses"].items()]})
    return found


def _schemas(schemas: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, "description": s.get("description", ""),
             "fields": [{"name": field, "type": _type_of(prop), "required": field in s.get("required", []),
                         "description": prop.get("description", "")} for field, prop in s.get("properties", {}).items()]}
            for name, s in sorted(schemas.items())]


def _type_of(schema: dict[str, Any]) -> str:
    """A short type text: ``MessageStatus``, ``list of Receipt``, ``string (uuid) or null``."""
    if "$ref" in schema:
        return str(schema["$ref"]).removeprefix(REF.format(model=""))
    if "anyOf" in schema:
        return " or ".join(_type_of(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_type_of(schema.get('items', {}))}"
    if "enum" in schema:
        return " | ".join(map(str, schema["enum"]))
    if "const" in schema:
        return repr(schema["const"])
    kind = str(schema.get("type", "any"))
    return f"{kind} ({schema['format']})" if "format" in schema else kind
