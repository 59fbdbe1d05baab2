"""The JSON schema models are asked for: strict (every property required, no extra ones) and
cut to what the config allows, so that a server enforcing it by grammar cannot let a model
wander past a limit the agents would discard anyway (subtask depth, list lengths)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

_DEFS = "#/$defs/"


def strict_schema(model: type[BaseModel], max_depth: int | None = None) -> dict[str, Any]:
    """The pydantic model's JSON schema, made acceptable to `strict: true` structured outputs.

    Every object lists all its properties as required and has `additionalProperties: false`;
    `$defs`/`$ref` are kept (recursive models work); titles and defaults are dropped;
    `Optional[X]` stays an `anyOf` with `{"type": "null"}`. With `max_depth`, recursion is
    unrolled that deep (see `cut_recursion`). A `$ref` with sibling keywords
    (pydantic puts a field's description next to it) is inlined once, the siblings kept; a
    recursive reference is never inlined (its siblings are dropped instead).
    """
    raw = model.model_json_schema()
    defs: dict[str, Any] = raw.pop("$defs", {}) or {}

    def resolve(ref: str) -> dict[str, Any] | None:
        prefix = "#/$defs/"
        if not ref.startswith(prefix):
            return None
        target = defs.get(ref[len(prefix):])
        return target if isinstance(target, dict) else None

    def walk(node: Any, inlining: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [walk(item, inlining) for item in node]
        if not isinstance(node, dict):
            return node
        node = {k: v for k, v in node.items() if k not in ("title", "default", "examples")}
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
            node.pop("allOf")
            node = {**all_of[0], **node}
        ref = node.get("$ref")
        if isinstance(ref, str) and len(node) > 1:
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            target = resolve(ref)
            if target is None or ref in inlining:
                return {"$ref": ref}
            return walk({**target, **siblings}, inlining | {ref})
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: walk(s, inlining) for name, s in value.items()}
            elif key in ("items", "anyOf", "oneOf", "allOf", "prefixItems", "not"):
                out[key] = walk(value, inlining)
            else:
                out[key] = value
        if out.get("type") == "object" or "properties" in out:
            out.setdefault("type", "object")
            out.setdefault("properties", {})
            out["required"] = list(out["properties"])
            out["additionalProperties"] = False
        return out

    root_inlining: frozenset[str] = frozenset()
    root_ref = raw.get("$ref")
    if isinstance(root_ref, str):
        target = resolve(root_ref)
        if target is not None:
            raw = {**target, **{k: v for k, v in raw.items() if k != "$ref"}}
            root_inlining = frozenset({root_ref})
    schema: dict[str, Any] = walk(raw, root_inlining)
    if defs:
        schema["$defs"] = {
            name: walk(d, frozenset({f"#/$defs/{name}"})) for name, d in defs.items()}
    return schema if max_depth is None else cut_recursion(schema, max_depth)


def cut_recursion(schema: dict[str, Any], max_depth: int) -> dict[str, Any]:
    """Recursive definitions unrolled: a model nests at most `max_depth` levels below the
    first (a task, its subtasks, ... `max_depth` times); the list that would nest deeper can
    only be empty. Definitions nothing refers to any more are dropped."""
    defs: dict[str, Any] = schema.get("$defs") or {}
    recursive = {name for name, d in defs.items()
                 if f'"{_DEFS}{name}"' in json.dumps(d)}
    if not recursive:
        return schema

    def target(node: Any) -> str | None:
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            name = node["$ref"][len(_DEFS):]
            if node["$ref"].startswith(_DEFS) and name in recursive:
                return name
        return None

    def expand(node: Any, levels: dict[str, int]) -> Any:
        if isinstance(node, list):
            return [expand(item, levels) for item in node]
        if not isinstance(node, dict):
            return node
        name = target(node)
        if name is not None:
            return expand({k: v for k, v in defs[name].items()},
                          {**levels, name: levels.get(name, 0) + 1})
        items_of = target(node.get("items"))
        if node.get("type") == "array" and items_of and levels.get(items_of, 0) > max_depth:
            return {**{k: v for k, v in node.items() if k != "items"}, "maxItems": 0,
                    "items": {"type": "object", "properties": {}, "required": [],
                              "additionalProperties": False}}
        return {k: (expand(v, levels) if k != "$defs" else v) for k, v in node.items()}

    out: dict[str, Any] = expand({k: v for k, v in schema.items() if k != "$defs"}, {})
    kept = {name: expand(d, {}) for name, d in defs.items() if name not in recursive}
    used = {name: d for name, d in kept.items() if f'"{_DEFS}{name}"' in json.dumps(out)}
    if used:
        out["$defs"] = used
    return out


def narrow(schema: dict[str, Any], choices: tuple[tuple[str, tuple[str, ...]], ...] = (),
           sequences: tuple[tuple[str, str, tuple[str, ...]], ...] = (),
           positional: bool = False) -> dict[str, Any]:
    """A copy of the schema whose fields at dotted paths (through objects and lists, e.g.
    `requirements.id`) allow only the given values (`enum`). A sequence (list path, key
    field, values) holds the list's key field to those values; `positional` (for a server
    that turns the schema into a grammar) spells the list out, one item per value in order
    (`prefixItems`, no more items), where strict json_schema has no such keyword. A `$ref`
    on the way is inlined, so the definition's other uses keep it."""
    out: dict[str, Any] = json.loads(json.dumps(schema))
    defs: dict[str, Any] = out.get("$defs") or {}

    def resolved(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEFS) and ref[len(_DEFS):] in defs:
            inlined = json.loads(json.dumps(defs[ref[len(_DEFS):]]))
            node.clear()
            node.update(inlined)
        return node

    def at(path: str) -> list[dict[str, Any]]:
        nodes = [out]
        for name in path.split("."):
            found = []
            for node in nodes:
                node = resolved(node)
                while node.get("type") == "array" and isinstance(node.get("items"), dict):
                    node = resolved(node["items"])
                prop = (node.get("properties") or {}).get(name)
                if isinstance(prop, dict):
                    found.append(resolved(prop))
            nodes = found
        return nodes

    for path, values in choices:
        if not values:
            continue
        for node in at(path):
            target = node["items"] if node.get("type") == "array" and isinstance(
                node.get("items"), dict) else node
            if target.get("type") == "string":
                target["enum"] = list(dict.fromkeys(values))
    for path, key, values in sequences:
        if not values:
            continue
        for node in at(path):
            item = node.get("items")
            if node.get("type") != "array" or not isinstance(item, dict):
                continue
            item = resolved(item)
            if key not in (item.get("properties") or {}):
                continue
            if not positional:
                item["properties"][key] = {**item["properties"][key],
                                           "enum": list(dict.fromkeys(values))}
                continue
            spelled = []
            for value in dict.fromkeys(values):
                one = json.loads(json.dumps(item))
                one["properties"][key] = {**one["properties"][key], "enum": [value]}
                spelled.append(one)
            node["prefixItems"] = spelled
            node["items"] = False
            node["minItems"] = node["maxItems"] = len(spelled)
    return out
