"""The simulated Dev's JavaScript and TypeScript (one template, typed or not), their tests
(`node --test` for JavaScript; type-checked, dependency-free checks for TypeScript) and an
HTML page over the module."""

from __future__ import annotations

import html
import json
import posixpath

from orchestrator.sim.code_model import CodePlan, number

TSCONFIG = json.dumps({"compilerOptions": {
    "strict": True, "noEmit": True, "target": "ES2020", "module": "commonjs", "lib": ["ES2020"],
    "types": [], "skipLibCheck": True}, "include": ["**/*.ts"]}, indent=2) + "\n"


def module(plan: CodePlan, typed: bool) -> str:
    p, bug = plan, plan.defect
    rec = "Record<string, string>" if typed else ""

    def t(annotation: str) -> str:
        return f": {annotation}" if typed else ""

    ex = "export " if typed else ""
    out = [f"/** {p.title} ({p.ids_text}). */", "" if typed else '"use strict";',
           f"{ex}const FIELDS{t('string[]')} = {json.dumps(list(p.fields))};"]
    if p.choices:
        out.append(f"{ex}const ALLOWED{t('string[]')} = {json.dumps(list(p.choices))};")
    if p.limit:
        out.append(f"const LOW = {number(p.limit.low)};\nconst HIGH = {number(p.limit.high)};")
    first_kept = "i === 0 ? \"\" : " if bug == "add" else ""
    out += ["", f"{ex}class Refused extends Error {{}}", "", f"{ex}class {p.name} {{"]
    if typed:
        out += [f"  private items = new Map<number, {rec}>();", "  private order: number[] = [];",
                "  private log: Array<[number, string]> = [];", "  private next = 1;"]
    else:
        out += ["  constructor() {", "    this.items = new Map();", "    this.order = [];",
                "    this.log = [];", "    this.next = 1;", "  }"]
    out += ["", f"  add(values{t(rec)}){t('number')} {{",
            "    const missing = FIELDS.filter((f) => !String(values[f] ?? \"\").trim());",
            "    if (missing.length) throw new Refused(\"missing: \" + missing.join(\", \"));",
            f"    const record{t(rec)} = {{}};",
            f"    FIELDS.forEach((f, i) => {{ record[f] = {first_kept}String(values[f]); }});"]
    if p.choices:
        out.append(f"    record[{json.dumps(p.choice_field)}] = this.allowed("
                   f"values[{json.dumps(p.choice_field)}] ?? ALLOWED[0]);")
    out += ["    const id = this.next++;", "    this.items.set(id, record);", "    this.order.push(id);",
            "    this.log.push([id, \"added\"]);", "    return id;", "  }", "",
            f"  get(id{t('number')}){t(rec)} {{", "    const found = this.items.get(id);",
            "    if (!found) throw new Refused(`no record ${id}`);", "    return { ...found };", "  }", "",
            f"  all(){t('number[]')} {{", "    return [...this.order];", "  }"]
    if p.choices:
        check = "true" if bug == "validate" else "ALLOWED.includes(value)"
        out += ["", f"  allowed(value{t('string')}){t('string')} {{",
                f"    if (!({check})) throw new Refused(`${{value}} is not one of ${{ALLOWED.join(\", \")}}`);",
                "    return value;", "  }"]
    if p.has("update"):
        keep = "" if bug == "update" else "    this.items.set(id, { ...current, ...changes });"
        out += ["", f"  update(id{t('number')}, changes{t(rec)}){t(rec)} {{",
                "    const current = this.get(id);",
                "    const strange = Object.keys(changes).filter((k) => !(k in current));",
                "    if (strange.length) throw new Refused(\"unknown: \" + strange.join(\", \"));"]
        if p.choices:
            c = json.dumps(p.choice_field)
            out.append(f"    if ({c} in changes) this.allowed(changes[{c}]);")
        out += [keep, "    this.log.push([id, \"changed \" + Object.keys(changes).sort().join(\", \")]);",
                "    return { ...current, ...changes };", "  }"]
    if p.has("remove"):
        out += ["", f"  remove(id{t('number')}){t('void')} {{", "    this.get(id);",
                "    this.items.delete(id);"]
        out += [] if bug == "remove" else ["    this.order = this.order.filter((i) => i !== id);"]
        out += ["    this.log.push([id, \"removed\"]);", "  }"]
    if p.has("find"):
        test = "true" if bug == "find" else (
            "Object.entries(criteria).every(([k, v]) => this.items.get(i)?.[k] === v)")
        out += ["", f"  find(criteria{t(rec)}){t('number[]')} {{",
                f"    return this.order.filter((i) => {test});", "  }"]
    if p.has("sort"):
        rev = "" if bug == "sort" else ".reverse()"
        out += ["", f"  newestFirst(){t('number[]')} {{", f"    return [...this.order]{rev};", "  }"]
    if p.has("count"):
        key = json.dumps(p.choice_field if p.choices else p.fields[0])
        extra = " + 1" if bug == "count" else ""
        out += ["", f"  countBy(){t('Record<string, number>')} {{",
                f"    const counts{t('Record<string, number>')} = {{}};",
                f"    for (const i of this.order) {{ const k = this.get(i)[{key}]; "
                f"counts[k] = (counts[k] ?? 0) + 1{extra}; }}", "    return counts;", "  }"]
    if p.has("history"):
        rev = "" if bug == "history" else ".reverse()"
        out += ["", f"  history(id{t('number')}){t('string[]')} {{",
                f"    return this.log.filter(([i]) => i === id).map(([, what]) => what){rev};", "  }"]
    out.append("}")
    if p.limit:
        upper = "<" if bug == "limit" else "<="
        out += ["", f"{ex}function withinLimit(value{t('number')}){t('boolean')} {{",
                f"  return LOW <= value && value {upper} HIGH;", "}"]
    if not typed:
        names = ", ".join([p.name, "Refused", "FIELDS"] + (["withinLimit"] if p.limit else []))
        out += ["", f"const api = {{ {names} }};",
                "if (typeof module !== \"undefined\") module.exports = api;",
                "else globalThis.orchModules = { ...(globalThis.orchModules || {}), "
                f"{json.dumps(p.name)}: api }};"]
    return "\n".join(out) + "\n"


def tests(plan: CodePlan, test_path: str, module_path: str, typed: bool) -> str:
    p = plan
    rel = posixpath.relpath(module_path, posixpath.dirname(test_path) or ".")
    a, b, first = json.dumps(p.sample(1)), json.dumps(p.sample(2)), json.dumps(p.fields[0])
    if typed:
        names = ", ".join([p.name, "Refused"] + (["withinLimit"] if p.limit else []))
        head = [f"/** Checks of {p.title} ({p.ids_text}); type-checked by tsc. */",
                f'import {{ {names} }} from "./{rel.removesuffix(".ts")}";', "",
                "function check(name: string, fn: () => void): void {", "  try { fn(); } catch (e) {",
                "    throw new Error(`${name}: ${String(e)}`);", "  }", "}",
                "function equal(a: unknown, b: unknown): void {",
                "  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${JSON.stringify(a)} != ${JSON.stringify(b)}`);",
                "}", "function refuses(fn: () => void): void {",
                "  try { fn(); } catch (e) { if (e instanceof Refused) return; throw e; }",
                "  throw new Error(\"not refused\");", "}"]
        pre, mk = "", f"new {p.name}()"
    else:
        head = ['"use strict";', f"// Tests of {p.title} ({p.ids_text}).",
                'const test = require("node:test");', 'const assert = require("node:assert/strict");',
                'const path = require("node:path");', f"const code = require(path.join(__dirname, {json.dumps(rel)}));"]
        pre, mk = "code.", f"new code.{p.name}()"
    head += [f"const A = {a};", f"const B = {b};", ""]
    cases: list[tuple[str, list[str]]] = [
        ("a record keeps every field", ["const id = book.add(A);", "equal(Object.fromEntries(Object.keys(A).map((k) => [k, book.get(id)[k]])), A);"]),
        ("a record missing a field is refused", [f"refuses(() => book.add({{ ...A, {first}: \"\" }}));"]),
    ]
    if p.choices:
        c = json.dumps(p.choice_field)
        cases.append(("only allowed values are kept", [f"refuses(() => book.add({{ ...A, {c}: \"not-\" + A[{c}] }}));"]))
    if p.has("update"):
        cases.append(("a change is kept", ["const id = book.add(A);", f"book.update(id, {{ {first}: B[{first}] }});",
                                           f"equal(book.get(id)[{first}], B[{first}]);"]))
    if p.has("remove"):
        cases.append(("a removed record is gone", ["const id = book.add(A);", "book.remove(id);", "equal(book.all().includes(id), false);"]))
    if p.has("find"):
        cases.append(("a search returns only matches", ["const one = book.add(A);", "book.add(B);", f"equal(book.find({{ {first}: A[{first}] }}), [one]);"]))
    if p.has("sort"):
        cases.append(("records come newest first", ["const one = book.add(A);", "const two = book.add(B);", "equal(book.newestFirst(), [two, one]);"]))
    if p.has("count"):
        key = json.dumps(p.choice_field if p.choices else p.fields[0])
        cases.append(("counts add up", ["book.add(A);", "book.add(A);", "book.add(B);", f"equal(book.countBy()[A[{key}]], 2);"]))
    if p.has("history") and p.has("update"):
        cases.append(("history is newest first", ["const id = book.add(A);", f"book.update(id, {{ {first}: B[{first}] }});",
                                                  "equal(book.history(id)[book.history(id).length - 1], \"added\");"]))
    if p.limit:
        low, high = number(p.limit.low), number(p.limit.high)
        cases.append(("the limit holds at its bounds", [f"equal({pre}withinLimit({low}) && {pre}withinLimit({high}), true);",
                                                        f"equal({pre}withinLimit({high} + 1), false);"]))
    body: list[str] = []
    for name, steps in cases:
        if typed:
            body += [f"check({json.dumps(p.ids_text + ': ' + name)}, () => {{", f"  const book = {mk};"]
        else:
            body += [f"test({json.dumps(p.ids_text + ': ' + name)}, () => {{", f"  const book = {mk};"]
        body += ["  " + s for s in steps] + ["});", ""]
    text = "\n".join(head + body)
    return text if typed else _js_asserts(text)


def _js_asserts(text: str) -> str:
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("refuses("):
            line = line.replace("refuses(", "assert.throws(", 1)[:-2] + ", code.Refused);"
        elif stripped.startswith("equal("):
            line = line.replace("equal(", "assert.deepEqual(", 1)
        out.append(line)
    return "\n".join(out) + "\n"


def page(plan: CodePlan, page_path: str, module_path: str) -> str:
    p = plan
    rel = posixpath.relpath(module_path, posixpath.dirname(page_path) or ".")
    inputs = []
    for f in p.fields:
        label = html.escape(f.replace("_", " ").capitalize())
        inputs += [f'    <label for="{f}">{label}</label>', f'    <input id="{f}" name="{f}" required>']
    if p.choices:
        c = p.choice_field
        options = "".join(f'<option>{html.escape(v)}</option>' for v in p.choices)
        inputs += [f'    <label for="{c}">{html.escape(c.capitalize())}</label>',
                   f'    <select id="{c}" name="{c}">{options}</select>']
    title = html.escape(p.title)
    return "\n".join([
        "<!doctype html>", '<html lang="en">', "<head>", '  <meta charset="utf-8">',
        '  <meta name="viewport" content="width=device-width, initial-scale=1">',
        f"  <title>{title}</title>", f'  <script src="{html.escape(rel)}"></script>', "</head>",
        "<body>", "  <main>", f"  <h1>{title}</h1>", f"  <p>{html.escape(p.ids_text)}</p>",
        f'  <form id="add" aria-label="Add {html.escape(p.behaviour.thing)}">', *inputs,
        '    <button type="submit">Add</button>', "  </form>", '  <ul id="records" aria-live="polite"></ul>',
        "  </main>", "  <script>", "    const api = globalThis.orchModules[" + json.dumps(p.name) + "];",
        f"    const book = new api.{p.name}();", '    const form = document.getElementById("add");',
        '    form.addEventListener("submit", (event) => {', "      event.preventDefault();",
        "      const values = Object.fromEntries(new FormData(form));",
        "      try { book.add(values); } catch (e) { alert(e.message); return; }",
        '      const list = document.getElementById("records");',
        "      list.replaceChildren(...book.all().map((id) => {",
        '        const item = document.createElement("li");',
        "        item.textContent = Object.values(book.get(id)).join(\" · \");", "        return item;",
        "      }));", "    });", "  </script>", "</body>", "</html>", ""])
