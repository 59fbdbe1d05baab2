"""Offline provider: the web files a Dev writes — ES modules, pages and node:test tests."""

from __future__ import annotations

import html
import json
import posixpath
import re

from orchestrator.sim.spec import content_words
from orchestrator.sim.task import Work

_API = '''
/** Calls the backend and returns its JSON; throws an Error carrying the server's message. */
export async function api(path, options = {}, fetchFn = globalThis.fetch) {
  const response = await fetchFn(`${API_BASE}${path}`, {
    ...options,
    headers: { "Content-Type": "application/json", ...(options.headers ?? {}) },
  });
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    throw new Error(body?.error ?? `request failed with status ${response.status}`);
  }
  return body;
}
'''

_BOARD = '''
/** Items grouped into one column per status, in STATUSES order. */
export function groupByStatus(items) {
  const columns = Object.fromEntries(STATUSES.map((status) => [status, []]));
  for (const item of items) {
    (columns[item.status] ?? columns[STATUSES[0]]).push(item);
  }
  return columns;
}

/** A copy of the items with one moved to another status; unknown statuses are refused. */
export function moveItem(items, id, status) {
  if (!STATUSES.includes(status)) {
    throw new Error(`status must be one of ${STATUSES.join(", ")}`);
  }
  return items.map((item) => (item.id === id ? { ...item, status } : item));
}

/** Wires drag and drop on a rendered board: dropping a card on a column calls onMove. */
export function enableDragAndDrop(root, onMove) {
  root.addEventListener("dragstart", (event) => {
    const card = event.target.closest("[data-id]");
    if (card) event.dataTransfer.setData("text/plain", card.dataset.id);
  });
  root.addEventListener("dragover", (event) => event.preventDefault());
  root.addEventListener("drop", (event) => {
    event.preventDefault();
    const column = event.target.closest("[data-status]");
    const id = Number(event.dataTransfer.getData("text/plain"));
    if (column && id) onMove(id, column.dataset.status);
  });
}
'''

_SESSION = '''
export const SESSION_KEY = "session";

/** Keeps the session (token and expiry) in the given storage, e.g. localStorage. */
export function saveSession(storage, session) {
  const { token, expiresAt } = session;
  storage.setItem(SESSION_KEY, JSON.stringify({ token, expiresAt }));
}

/** The stored session while its token is valid; an expired one is removed. */
export function currentSession(storage, now = Date.now()) {
  const raw = storage.getItem(SESSION_KEY);
  if (!raw) return null;
  const session = JSON.parse(raw);
  if (!(session.expiresAt > now)) {
    storage.removeItem(SESSION_KEY);
    return null;
  }
  return session;
}

/** Signs in through the API; the session lasts until the token's expiry. */
export async function signIn(email, password, fetchFn = globalThis.fetch) {
  const request = { method: "POST", body: JSON.stringify({ email, password }) };
  const body = await api("/sessions", request, fetchFn);
  return { token: body.token, expiresAt: Date.parse(body.expires_at) || Date.now() + __TTL_MS__ };
}
'''

_FILTER = '''
/** Items matching every non-empty criterion; `dueBefore` keeps items due on or before a date. */
export function filterItems(items, criteria = {}) {
  return items.filter((item) =>
    Object.entries(criteria).every(([key, value]) => {
      if (value === "" || value === undefined || value === null) return true;
      if (key === "dueBefore") return Boolean(item.due_date) && item.due_date <= value;
      return item[key] === value;
    }),
  );
}
'''

_HISTORY = '''
/** History entries newest first, by their `at` timestamp. */
export function newestFirst(entries) {
  return [...entries].sort((a, b) => String(b.at).localeCompare(String(a.at)));
}
'''

_A11Y = '''
function luminance(hex) {
  const channels = hex.replace("#", "").match(/../g).map((c) => parseInt(c, 16) / 255);
  const [r, g, b] = channels.map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** WCAG 2.1 contrast ratio of two #rrggbb colours. */
export function contrastRatio(foreground, background) {
  const [light, dark] = [luminance(foreground), luminance(background)].sort((x, y) => y - x);
  return (light + 0.05) / (dark + 0.05);
}

/** WCAG 2.1 AA: 4.5:1 for text, 3:1 for large text. */
export function meetsContrastAA(foreground, background, largeText = false) {
  return contrastRatio(foreground, background) >= (largeText ? 3 : 4.5);
}

/** Keyboard use: Enter and Space activate, arrow keys move the focus. */
export function keyboardAction(key) {
  const actions = { Enter: "activate", " ": "activate", ArrowRight: "next", ArrowDown: "next",
    ArrowLeft: "previous", ArrowUp: "previous" };
  return actions[key] ?? null;
}
'''

_RENDER_BOARD = '''
/** Renders the board into `root`: one column per status, cards draggable and focusable. */
export function render(root, state) {
  const doc = root.ownerDocument;
  root.replaceChildren();
  const columns = groupByStatus(state.items ?? []);
  for (const status of STATUSES) {
    const column = doc.createElement("section");
    column.dataset.status = status;
    column.setAttribute("aria-label", status);
    const heading = doc.createElement("h2");
    heading.textContent = status;
    const list = doc.createElement("ul");
    for (const item of columns[status]) {
      const card = doc.createElement("li");
      card.dataset.id = String(item.id);
      card.draggable = true;
      card.tabIndex = 0;
      card.textContent = item.__FIELD__ ?? `#${item.id}`;
      list.append(card);
    }
    column.append(heading, list);
    root.append(column);
  }
}
'''

_RENDER_LIST = '''
/** Renders the items into `root` as a list. */
export function render(root, state) {
  const doc = root.ownerDocument;
  root.replaceChildren();
  const list = doc.createElement("ul");
  for (const item of state.items ?? []) {
    const row = doc.createElement("li");
    row.tabIndex = 0;
    row.textContent = item.__FIELD__ ?? `#${item.id}`;
    list.append(row);
  }
  root.append(list);
}
'''


def header(work: Work, comment: str = "//") -> list[str]:
    lines = [f"{comment} {work.title}", f"{comment} Implements {work.ids_text} "
             f"({work.squad} squad): {' '.join(work.text.split())}"]
    lines += [f"{comment} QA finding addressed: {f}" for f in work.findings]
    return lines


def js_module(work: Work) -> tuple[str, str]:
    lines = header(work) + ["", f"export const REQUIREMENTS = {json.dumps(list(work.ids))};",
                             'export const API_BASE = "/api";']
    if work.board or work.statuses:
        lines.append(f"export const STATUSES = {json.dumps(list(work.statuses))};")
    parts = [_API]
    names = ["api", "render"]
    if work.board or work.statuses:
        parts.append(_BOARD)
        names += ["groupByStatus", "moveItem", "enableDragAndDrop"]
    if work.auth:
        parts.append(_SESSION.replace("__TTL_MS__", str(work.ttl_seconds * 1000)))
        names += ["saveSession", "currentSession", "signIn"]
    if work.search:
        parts.append(_FILTER)
        names.append("filterItems")
    if work.history:
        parts.append(_HISTORY)
        names.append("newestFirst")
    if work.accessibility:
        parts.append(_A11Y)
        names += ["contrastRatio", "meetsContrastAA", "keyboardAction"]
    render = _RENDER_BOARD if (work.board or work.statuses) else _RENDER_LIST
    parts.append(render.replace("__FIELD__", work.main_field))
    return "\n".join(lines) + "\n" + "".join(parts), f"ES module ({', '.join(names)})"


def _js_tests(work: Work) -> list[tuple[str, str]]:
    ids = json.dumps(sorted(work.ids))
    tests = [("names its requirements",
              f"  assert.deepEqual([...mod.REQUIREMENTS].sort(), {ids});\n"),
             ("calls the API and reports its errors",
              "  const fetchFn = async () => ({ ok: false, status: 400, "
              'json: async () => ({ error: "bad input" }) });\n'
              '  await assert.rejects(mod.api("/items", {}, fetchFn), /bad input/);\n')]
    if work.board or work.statuses:
        first, last = json.dumps(work.statuses[0]), json.dumps(work.statuses[-1])
        tests += [("groups items into one column per status",
                   f"  const columns = mod.groupByStatus([{{ id: 1, status: {first} }}, "
                   f"{{ id: 2, status: {last} }}]);\n"
                   "  assert.deepEqual(Object.keys(columns), mod.STATUSES);\n"
                   f"  assert.equal(columns[{first}][0].id, 1);\n"),
                  ("moves an item and refuses unknown statuses",
                   f"  const moved = mod.moveItem([{{ id: 1, status: {first} }}], 1, {last});\n"
                   f"  assert.equal(moved[0].status, {last});\n"
                   '  assert.throws(() => mod.moveItem(moved, 1, "not-a-status"));\n')]
    if work.auth:
        tests += [("keeps the session until the token expires",
                   "  const storage = memoryStorage();\n"
                   '  mod.saveSession(storage, { token: "t", expiresAt: 2000 });\n'
                   '  assert.equal(mod.currentSession(storage, 1000).token, "t");\n'
                   "  assert.equal(mod.currentSession(storage, 2000), null);\n"),
                  ("signs in through the API",
                   "  const fetchFn = async () => ({ ok: true, status: 200, json: async () => "
                   '({ token: "abc", expires_at: "2030-01-01T00:00:00Z" }) });\n'
                   '  const session = await mod.signIn("dana@example.com", "secret", fetchFn);\n'
                   '  assert.equal(session.token, "abc");\n')]
    if work.search:
        tests.append(("filters by field and by due date",
                      '  const items = [{ id: 1, assignee: "dana", due_date: "2030-01-01" }, '
                      '{ id: 2, assignee: "lee", due_date: "2030-02-01" }];\n'
                      '  assert.deepEqual(mod.filterItems(items, { assignee: "dana" })'
                      ".map((i) => i.id), [1]);\n"
                      '  assert.deepEqual(mod.filterItems(items, { dueBefore: "2030-01-15" })'
                      ".map((i) => i.id), [1]);\n"
                      "  assert.equal(mod.filterItems(items, {}).length, 2);\n"))
    if work.history:
        tests.append(("lists the history newest first",
                      '  const entries = mod.newestFirst([{ at: "2030-01-01" }, '
                      '{ at: "2030-01-02" }]);\n  assert.equal(entries[0].at, "2030-01-02");\n'))
    if work.accessibility:
        tests += [("checks WCAG AA contrast",
                   '  assert.ok(mod.meetsContrastAA("#000000", "#ffffff"));\n'
                   '  assert.ok(!mod.meetsContrastAA("#777777", "#888888"));\n'),
                  ("maps keys to actions",
                   '  assert.equal(mod.keyboardAction("Enter"), "activate");\n'
                   '  assert.equal(mod.keyboardAction("x"), null);\n')]
    return tests


def sibling(path: str, work: Work, exts: tuple[str, ...], default_ext: str) -> str:
    """The module a test or page belongs to, relative to it (`./x.js`, `../src/x.js`)."""
    stem = re.sub(r"(\.test|\.spec|_test)$", "", posixpath.basename(path).split(".")[0])
    modules = [p for p in work.files if p.endswith(exts) and p != path
               and not re.search(r"[._]test\.|\.spec\.", p)]
    same = [p for p in modules if posixpath.basename(p).split(".")[0] == stem]
    if same or modules:
        target = (same or modules)[0]
    else:
        root = posixpath.dirname(posixpath.dirname(path)) if "/" in path else ""
        target = posixpath.join(root, "src", stem + default_ext)
    rel = posixpath.relpath(target, posixpath.dirname(path) or ".")
    return rel if rel.startswith(".") else "./" + rel


def _closest(finding: str, tests: list[tuple[str, str]]) -> str:
    """The body of the test whose name shares most words with a QA finding."""
    wanted = set(content_words(finding))
    scores = [len(wanted & set(content_words(name))) for name, _ in tests]
    return tests[scores.index(max(scores))][1]


def js_test(path: str, work: Work) -> tuple[str, str]:
    target = sibling(path, work, (".js", ".mjs"), ".js")
    lines = header(work) + ['import { test } from "node:test";',
                             'import assert from "node:assert/strict";',
                             f'import * as mod from "{target}";', ""]
    if work.auth:
        lines += ["function memoryStorage() {", "  const data = new Map();",
                  "  return { getItem: (k) => data.get(k) ?? null, setItem: (k, v) => "
                  "data.set(k, v), removeItem: (k) => data.delete(k) };", "}", ""]
    tests = _js_tests(work)
    tests += [(f"QA finding: {f}", _closest(f, tests)) for f in work.findings]
    for name, body in tests:
        lines += [f"test({json.dumps(name)}, async () => {{", body.rstrip("\n"), "});", ""]
    return "\n".join(lines), f"{len(tests)} node:test tests"


def html_page(path: str, work: Work) -> tuple[str, str]:
    title = html.escape(work.title)
    script = sibling(path, work, (".js", ".mjs"), ".js")
    has_js = any(p.endswith((".js", ".mjs")) and not re.search(r"[._]test\.", p)
                 for p in work.files)
    body = ["<!doctype html>", '<html lang="en">', "<head>", '  <meta charset="utf-8">',
            '  <meta name="viewport" content="width=device-width, initial-scale=1">',
            f"  <title>{title}</title>",
            f'  <meta name="requirements" content="{html.escape(work.ids_text)}">', "</head>",
            "<body>", f"  <!-- Implements {html.escape(work.ids_text)}: "
            f"{html.escape(' '.join(work.text.split())).replace('--', '-')} -->",
            f"  <header><h1>{title}</h1></header>"]
    if work.auth:
        body += ['  <form id="sign-in" aria-label="Sign in">',
                 '    <label for="email">Email</label>',
                 '    <input id="email" name="email" type="email" autocomplete="username" '
                 'required>',
                 '    <label for="password">Password</label>',
                 '    <input id="password" name="password" type="password" '
                 'autocomplete="current-password" required>',
                 '    <button type="submit">Sign in</button>', "  </form>"]
    if work.search:
        body += ['  <form id="filters" aria-label="Filters">',
                 '    <label for="filter-assignee">Assignee</label>',
                 '    <input id="filter-assignee" name="assignee">',
                 '    <label for="filter-due">Due before</label>',
                 '    <input id="filter-due" name="dueBefore" type="date">', "  </form>"]
    body.append('  <main id="app" aria-live="polite"></main>')
    if has_js:
        body += ['  <script type="module">', f'    import {{ render }} from "{script}";',
                 '    render(document.getElementById("app"), { items: [] });', "  </script>"]
    body += ["</body>", "</html>"]
    return "\n".join(body) + "\n", "page" + (f" loading {script}" if has_js else "")
