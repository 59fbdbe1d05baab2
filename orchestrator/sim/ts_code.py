"""Offline provider: the mobile files a Dev writes — TypeScript screen logic and its tests."""

from __future__ import annotations

import json
import re

from orchestrator.sim.js_code import header, sibling
from orchestrator.sim.task import Work


def ts_module(work: Work) -> tuple[str, str]:
    c = work.class_name
    fields = "\n".join(f"  {f}: string;" for f in work.fields if f != "id")
    lines = header(work) + [
        "", f"export const REQUIREMENTS: readonly string[] = {json.dumps(list(work.ids))};", "",
        f"export interface {c} {{", "  id: number;", fields, "}", "",
        "export interface ScreenState {", f"  items: {c}[];", "  loading: boolean;",
        "  error: string | null;", "}", "",
        "export type Action =", '  | { type: "load" }', f'  | {{ type: "loaded"; items: {c}[] }}',
        '  | { type: "failed"; error: string }']
    if work.statuses:
        lines += ['  | { type: "move"; id: number; status: string };']
    else:
        lines[-1] += ";"
    lines += ["", "export const initialState: ScreenState = { items: [], loading: false, "
              "error: null };", ""]
    if work.statuses:
        lines += [f"export const STATUSES: readonly string[] = {json.dumps(list(work.statuses))};",
                  ""]
    lines += ["/** The screen's state after an action; the screen renders nothing else. */",
              "export function reducer(state: ScreenState, action: Action): ScreenState {",
              "  switch (action.type) {",
              '    case "load":', "      return { ...state, loading: true, error: null };",
              '    case "loaded":',
              "      return { items: action.items, loading: false, error: null };",
              '    case "failed":',
              "      return { ...state, loading: false, error: action.error };"]
    if work.statuses:
        lines += ['    case "move":', "      if (!STATUSES.includes(action.status)) {",
                  '        const error = `status must be one of ${STATUSES.join(", ")}`;',
                  "        return { ...state, error };",
                  "      }", "      return { ...state, items: state.items.map((item) =>",
                  "        item.id === action.id ? { ...item, status: action.status } : item) };"]
    lines += ["  }", "}", ""]
    names = ["reducer"]
    if work.auth:
        lines += ["/** Whether a session is still valid: tokens expire, the app signs out. */",
                  "export function isSessionValid(expiresAt: number, now: number = Date.now()): "
                  "boolean {", "  return expiresAt > now;", "}", ""]
        names.append("isSessionValid")
    if work.search:
        lines += ["/** The items with the text in any field (case-insensitive). */",
                  f"export function filterItems(items: {c}[], text: string): {c}[] {{",
                  "  const needle = text.toLowerCase();",
                  "  return items.filter((item) => Object.values(item).some((v) => "
                  "String(v).toLowerCase().includes(needle)));", "}", ""]
        names.append("filterItems")
    return "\n".join(lines), f"TypeScript screen logic ({', '.join(names)})"


def ts_test(path: str, work: Work) -> tuple[str, str]:
    target = re.sub(r"\.tsx?$", "", sibling(path, work, (".ts", ".tsx"), ".ts"))
    imports = ["initialState", "reducer", "REQUIREMENTS"]
    imports += ["isSessionValid"] if work.auth else []
    lines = header(work) + [f'import {{ {", ".join(imports)} }} from "{target}";', "",
                             f"describe({json.dumps(work.title)}, () => {{",
                             "  it(\"names its requirements\", () => {",
                             f"    expect([...REQUIREMENTS].sort()).toEqual("
                             f"{json.dumps(sorted(work.ids))});", "  });",
                             "  it(\"loads items\", () => {",
                             '    const loading = reducer(initialState, { type: "load" });',
                             "    expect(loading.loading).toBe(true);",
                             '    expect(reducer(loading, { type: "loaded", items: [] }).loading)'
                             ".toBe(false);", "  });",
                             "  it(\"keeps the error of a failed load\", () => {",
                             '    const failed = reducer(initialState, '
                             '{ type: "failed", error: "offline" });',
                             '    expect(failed.error).toBe("offline");', "  });"]
    count = 3
    if work.auth:
        lines += ["  it(\"expires sessions\", () => {",
                  "    expect(isSessionValid(2000, 1000)).toBe(true);",
                  "    expect(isSessionValid(2000, 2000)).toBe(false);", "  });"]
        count += 1
    for finding in work.findings:
        lines += [f"  it({json.dumps('QA finding: ' + finding)}, () => {{",
                  "    expect(reducer(initialState, { type: \"load\" }).error).toBeNull();",
                  "  });"]
        count += 1
    lines += ["});", ""]
    return "\n".join(lines), f"{count} tests"
