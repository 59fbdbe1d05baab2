"""The simulated Dev's files for one task: each expected path gets content of its kind, code
and its tests paired by language, plus the few files that make them checkable."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Sequence

from orchestrator.sim import python_gen, script_gen
from orchestrator.sim.code_model import CodePlan, number

LANGS = {".py": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
         ".ts": "typescript", ".tsx": "typescript"}
RUNNABLE = {"python", "javascript"}
"""Languages whose tests the simulator writes so that a standard runner executes them."""


def language(path: str) -> str:
    return LANGS.get(posixpath.splitext(path)[1].lower(), "")


def is_test(path: str) -> bool:
    name = posixpath.basename(path).lower()
    return name.startswith("test_") or name.endswith("_test.py") or ".test." in name \
        or ".spec." in name


def code_files(paths: Sequence[str]) -> list[str]:
    """The expected paths plus a module for every test that has none of its language."""
    files = list(dict.fromkeys(paths))
    for test in [p for p in files if is_test(p) and language(p)]:
        if not any(language(p) == language(test) and not is_test(p) for p in files):
            stem = posixpath.basename(test)
            for marker in ("test_", "_test", ".test", ".spec"):
                stem = stem.replace(marker, "")
            files.append(f"src/{stem}")
    if any(language(p) == "typescript" for p in files):
        files.append("tsconfig.json")
    return list(dict.fromkeys(files))


def render(path: str, plan: CodePlan, files: Sequence[str]) -> str:
    lang = language(path)
    if path == "tsconfig.json":
        return script_gen.TSCONFIG
    if lang:
        module = next((p for p in files if language(p) == lang and not is_test(p)), "")
        if lang == "python":
            return python_gen.tests(plan, path, module) if is_test(path) else python_gen.module(plan)
        typed = lang == "typescript"
        if is_test(path):
            return script_gen.tests(plan, path, module, typed)
        return script_gen.module(plan, typed)
    ext = posixpath.splitext(path)[1].lower()
    if ext in (".html", ".htm"):
        script = next((p for p in files if language(p) == "javascript" and not is_test(p)), "")
        return script_gen.page(plan, path, script or "app.js")
    if ext == ".tf":
        return terraform(plan, path)
    if ext == ".json":
        return json.dumps(description(plan), indent=2) + "\n"
    if ext in (".yml", ".yaml"):
        return yaml_text(plan)
    return markdown(plan)


def description(plan: CodePlan) -> dict[str, object]:
    b = plan.behaviour
    return {"requirements": list(plan.ids), "title": plan.title, "keeps": b.thing,
            "fields": list(plan.fields), "allowed": {plan.choice_field: list(b.choices)}
            if b.choices else {}, "operations": list(b.operations),
            "limit": {"from": plan.limit.low, "to": plan.limit.high, "unit": plan.limit.unit}
            if plan.limit else None}


def yaml_text(plan: CodePlan) -> str:
    # JSON is YAML: one serializer, and the file parses wherever YAML does.
    return f"# {plan.title} ({plan.ids_text})\n" + json.dumps(description(plan), indent=2) + "\n"


def terraform(plan: CodePlan, path: str) -> str:
    """Variables, locals and outputs only: valid offline with `terraform init -backend=false`,
    named after the file so that many tasks' files share one folder without duplicates."""
    name = "".join(c if c.isalnum() else "_" for c in posixpath.basename(path)[:-3].lower())
    name = ("m_" + name) if not name[:1].isalpha() else name
    fields = json.dumps(list(plan.fields))
    lines = [f"# {plan.title} ({plan.ids_text})", "", f'variable "{name}_fields" {{',
             "  type    = list(string)", f"  default = {fields}", "}", ""]
    if plan.limit:
        lines += [f'variable "{name}_limit" {{', "  type    = number",
                  f"  default = {number(plan.limit.high)}", "  validation {",
                  f"    condition     = var.{name}_limit >= {number(plan.limit.low)}",
                  f'    error_message = "{name}_limit is below {number(plan.limit.low)}."',
                  "  }", "}", ""]
    lines += ["locals {", f"  {name} = {{", f'    requirements = {json.dumps(list(plan.ids))}',
              f"    fields       = var.{name}_fields",
              f'    operations   = {json.dumps(list(plan.behaviour.operations))}', "  }", "}", "",
              f'output "{name}" {{', f"  value = local.{name}", "}", ""]
    return "\n".join(lines)


def markdown(plan: CodePlan) -> str:
    b = plan.behaviour
    lines = [f"# {plan.title}", "", f"Requirements: {plan.ids_text}.", "",
             f"Keeps **{b.thing.replace('_', ' ')}** records with: "
             + ", ".join(f.replace("_", " ") for f in plan.fields) + "."]
    if b.choices:
        lines += ["", f"Allowed values of {plan.choice_field}: " + ", ".join(b.choices)
                  + "; any other is refused."]
    if plan.limit:
        lines += ["", f"Limit: {number(plan.limit.low)} to {number(plan.limit.high)} "
                  f"{plan.limit.unit}".rstrip() + "."]
    lines += ["", "Operations: " + ", ".join(b.operations) + "."]
    return "\n".join(lines) + "\n"
