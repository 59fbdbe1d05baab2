"""Offline provider: the contents of the files a Dev writes, chosen by path and requirement."""

from __future__ import annotations

import json
import posixpath
import re

from orchestrator.sim import js_code, py_code, py_tests, ts_code
from orchestrator.sim.spec import clauses, decapitalize
from orchestrator.sim.task import Work


def render_file(path: str, work: Work) -> tuple[str, str]:
    """(content, one-line summary) of a file the task must write, by its kind."""
    name = posixpath.basename(path)
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    is_test = bool(re.match(r"^test_|.*[._-]test\.|.*_test\.", name)) or "/tests/" in f"/{path}"
    if ext == "py":
        return py_tests.test_file(path, work) if is_test else py_code.module(work)
    if ext in ("js", "mjs") and is_test:
        return js_code.js_test(path, work)
    if ext in ("js", "mjs"):
        return js_code.js_module(work)
    if ext in ("ts", "tsx") and is_test:
        return ts_code.ts_test(path, work)
    if ext in ("ts", "tsx"):
        return ts_code.ts_module(work)
    if ext in ("html", "htm"):
        return js_code.html_page(path, work)
    if ext == "tf":
        return terraform(work), "Terraform: deploy and wait for the health check"
    if ext in ("yml", "yaml"):
        return yaml_file(path, work)
    if ext == "json":
        doc = {"requirements": list(work.ids), "title": work.title, "description": work.text}
        return json.dumps(doc, indent=2) + "\n", "JSON document"
    if ext in ("md", "markdown", "txt", "rst", ""):
        return markdown(work), "document"
    return _commented(ext, work), f"{ext} file"


def terraform(work: Work) -> str:
    service = re.sub(r"[^a-z0-9-]+", "-", f"{work.project}-{work.squad}".lower()).strip("-")
    lines = [f"# {work.title}", f"# Implements {work.ids_text}: {work.text}", "",
             "terraform {", '  required_version = ">= 1.5.0"', "}", ""]
    for name, kind, default, doc in (
        ("environment", "string", '"production"', "Name of the environment to deploy to."),
        ("image", "string", f'"{service}:latest"', "Container image of the service."),
        ("port", "number", "8080", "Port the service listens on."),
        ("health_check_path", "string", '"/health"', "Path the deploy waits for."),
    ):
        lines += [f'variable "{name}" {{', f"  type        = {kind}",
                  f'  description = "{doc}"', f"  default     = {default}", "}", ""]
    lines += [
        "locals {", f'  service_name = "{service}"',
        '  health_url   = "http://localhost:${var.port}${var.health_check_path}"', "}", "",
        'resource "terraform_data" "deploy" {',
        "  input = { image = var.image, environment = var.environment }",
        '  provisioner "local-exec" {',
        '    command = "docker rm -f ${local.service_name} >/dev/null 2>&1 || true; docker run -d '
        '--name ${local.service_name} -p ${var.port}:${var.port} ${var.image}"', "  }", "}", "",
        'resource "terraform_data" "health_check" {',
        "  depends_on = [terraform_data.deploy]",
        "  triggers_replace = [terraform_data.deploy.id]",
        '  provisioner "local-exec" {',
        '    command = "for i in $(seq 1 30); do curl -fsS ${local.health_url} && exit 0; '
        'sleep 2; done; exit 1"', "  }", "}", "",
        'output "health_check_url" {', "  value = local.health_url", "}", ""]
    return "\n".join(lines)


def yaml_file(path: str, work: Work) -> tuple[str, str]:
    head = [f"# {work.title}", f"# Implements {work.ids_text}: {work.text}"]
    service = re.sub(r"[^a-z0-9-]+", "-", f"{work.project}-{work.squad}".lower()).strip("-")
    ci_text = re.search(r"\bci\b|pipeline", work.text.lower())
    if re.search(r"ci/|workflow|pipeline|\.github", path) or ci_text:
        body = ["name: ci", "on:", "  push:", "    branches: [main]", "  pull_request:",
                "permissions:", "  contents: read", "jobs:", "  test:",
                "    runs-on: ubuntu-latest", "    steps:",
                "      - uses: actions/checkout@v4", "      - name: Run the tests",
                "        run: make test", "      - name: Deploy with one command",
                "        if: github.ref == 'refs/heads/main'", "        run: make deploy"]
        return "\n".join(head + body) + "\n", "CI pipeline: test, then deploy"
    body = ["apiVersion: apps/v1", "kind: Deployment", "metadata:", f"  name: {service}",
            "  labels:", f"    app: {service}", "spec:", "  replicas: 2", "  selector:",
            "    matchLabels:", f"      app: {service}", "  template:", "    metadata:",
            "      labels:", f"        app: {service}", "    spec:", "      containers:",
            f"        - name: {service}", f"          image: {service}:latest", "          ports:",
            "            - containerPort: 8080", "          readinessProbe:",
            "            httpGet:",
            "              path: /health", "              port: 8080",
            "            periodSeconds: 5", "---", "apiVersion: v1", "kind: Service",
            "metadata:", f"  name: {service}", "spec:", "  selector:", f"    app: {service}",
            "  ports:", "    - port: 80", "      targetPort: 8080"]
    return "\n".join(head + body) + "\n", "Kubernetes deployment with a readiness probe"


def markdown(work: Work) -> str:
    md = [f"# {work.title}", "", f"Requirements: {work.ids_text}.", ""]
    if work.block:
        md += ["## The block", "", work.block, "", "## Resolution", "",
               "This document is the contract the blocked task builds on:", ""]
    md += ["## What this delivers", "", " ".join(work.text.split()), ""]
    parts = clauses(work.text) or [work.text]
    md += ["## Details", ""] + [f"- {p}." for p in parts] + [""]
    siblings = [f for f in work.files if not f.endswith((".md", ".txt"))]
    if siblings:
        md += ["## Files", ""] + [f"- `{f}`" for f in siblings] + [""]
    md += ["## How it is verified", ""]
    md += [f"- {work.ids[0] if work.ids else 'Check'}: {decapitalize(p)} is checked by a "
           f"test or by the deploy's smoke tests." for p in parts]
    if re.search(r"deploy|infrastructure|command", work.text.lower()):
        md += ["", "## Deploy", "", "```sh", "terraform -chdir=infra init && "
               "terraform -chdir=infra apply -auto-approve", "```",
               "", "The apply waits for the health check before it reports success."]
    if work.findings:
        md += ["", "## QA findings addressed", ""] + [f"- {f}" for f in work.findings]
    return "\n".join(md) + "\n"


def _commented(ext: str, work: Work) -> str:
    prefix = {"sql": "--", "css": "/*", "sh": "#", "kt": "//", "swift": "//", "go": "//",
              "java": "//", "rs": "//", "rb": "#", "toml": "#", "ini": ";"}.get(ext, "#")
    if ext == "css":
        return (f"/* {work.title}\n   Implements {work.ids_text}. */\n"
                ":root { --fg: #1a1a1a; --bg: #ffffff; --accent: #0b57d0; }\n"
                "body { color: var(--fg); background: var(--bg); font-family: system-ui; }\n"
                ":focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }\n")
    if ext == "sql":
        cols = ",\n".join(f"  {f} TEXT" for f in work.fields)
        return (f"-- {work.title}\n-- Implements {work.ids_text}: {work.text}\n"
                f"CREATE TABLE IF NOT EXISTS {work.entity}s (\n  id INTEGER PRIMARY KEY,\n"
                f"{cols}\n);\n")
    return f"{prefix} {work.title}\n{prefix} Implements {work.ids_text}: {work.text}\n"
