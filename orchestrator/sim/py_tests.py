"""Offline provider: the pytest file a Dev writes next to a generated Python module."""

from __future__ import annotations

import posixpath
import re

from orchestrator.sim.py_code import doc_text
from orchestrator.sim.spec import content_words
from orchestrator.sim.task import Work


def _tests(work: Work) -> list[tuple[str, str, str]]:
    """(name, docstring, body) of each test, bodies indented by four spaces."""
    c, f = work.class_name, work.main_field
    new = f"    store = mod.{c}Store()\n"
    ids = ", ".join(repr(i) for i in work.ids)
    tests = [("test_names_its_requirements", "The module names the requirements it implements.",
              f"    assert set(mod.REQUIREMENTS) == {{{ids}}}\n" if work.ids
              else "    assert mod.REQUIREMENTS == ()\n")]
    if work.store:
        tests += [
            ("test_create_and_get", f"A created {work.entity} can be read back.",
             new + f'    item = store.create({f}="first")\n'
             f'    assert store.get(item.id).fields["{f}"] == "first"\n'),
            ("test_update_and_delete", f"A {work.entity} can be changed, then deleted.",
             new + f'    item = store.create({f}="first")\n'
             f'    store.update(item.id, {f}="second")\n'
             f'    assert store.get(item.id).fields["{f}"] == "second"\n'
             "    store.delete(item.id)\n    with pytest.raises(KeyError):\n"
             "        store.get(item.id)\n"),
            ("test_unknown_field_is_refused", "Fields outside FIELDS are refused.",
             f"    with pytest.raises(mod.ValidationError):\n"
             f'        mod.{c}Store().create(not_a_field="x")\n'),
            ("test_history_is_newest_first", "Every change is recorded, newest first.",
             new + f'    item = store.create({f}="first")\n'
             f'    store.update(item.id, {f}="second")\n    entries = store.history(item.id)\n'
             '    assert len(entries) == 2\n'
             '    assert "updated" in entries[0] and "created" in entries[1]\n'),
        ]
    if work.store and work.statuses:
        tests += [
            ("test_status_outside_allowed_values_is_refused",
             "Any other status is refused with an error naming the allowed values.",
             new + "    with pytest.raises(mod.ValidationError) as err:\n"
             f'        store.create({f}="first", status="not-a-status")\n'
             f"    assert err.value.status_code == {work.error_code}\n"
             "    for status in mod.ALLOWED_STATUSES:\n        assert status in str(err.value)\n"),
            ("test_status_moves_through_allowed_values", "Items move through every status.",
             new + f'    item = store.create({f}="first")\n'
             '    assert item.fields["status"] == mod.ALLOWED_STATUSES[0]\n'
             "    for status in mod.ALLOWED_STATUSES:\n"
             '        assert store.update(item.id, status=status).fields["status"] == status\n'),
        ]
    if work.store and work.assign:
        tests.append(("test_assign_and_list_by_member", "Items are assigned to one member.",
                      new + f'    first = store.create({f}="a")\n'
                      f'    second = store.create({f}="b")\n'
                      '    store.assign(first.id, "dana")\n    store.assign(second.id, "lee")\n'
                      '    assert [i.id for i in store.assigned_to("dana")] == [first.id]\n'
                      "    with pytest.raises(mod.ValidationError):\n"
                      '        store.assign(first.id, " ")\n'))
    if work.store and work.search:
        tests.append(("test_search_finds_text_in_any_field", "Search looks at every field.",
                      new + f'    store.create({f}="Write the report")\n'
                      f'    store.create({f}="Other")\n'
                      '    assert len(store.search("report")) == 1\n'))
    if work.auth:
        tests += _auth_tests(work)
    if work.latency_ms:
        op = "store.find" if work.store else "lambda: sum(range(100))"
        fill = (new + f'    for n in range(50):\n        store.create({f}=f"item {{n}}")\n'
                if work.store else "")
        tests.append(("test_p95_latency_within_budget",
                      f"The 95th percentile stays under {work.latency_ms} ms.",
                      fill + f"    assert mod.p95_ms({op}, runs=100) < mod.LATENCY_BUDGET_MS\n"))
    return tests


def _auth_tests(work: Work) -> list[tuple[str, str, str]]:
    setup = ('    auth = mod.Authenticator(clock=clock)\n'
             '    auth.register("dana@example.com", "correct horse")\n')
    clock = "    clock = _Clock()\n"
    return [
        ("test_sign_in_issues_a_token", "A registered user signs in and gets a valid token.",
         clock + setup + '    session = auth.sign_in("dana@example.com", "correct horse")\n'
         '    assert auth.verify(session.token) == "dana@example.com"\n'),
        ("test_wrong_password_is_refused", "A wrong password gets no token.",
         clock + setup + "    with pytest.raises(mod.AuthError):\n"
         '        auth.sign_in("dana@example.com", "wrong horse")\n'),
        ("test_token_expires", f"Tokens expire after {work.ttl_seconds} seconds.",
         clock + setup + '    session = auth.sign_in("dana@example.com", "correct horse")\n'
         f"    assert mod.TOKEN_TTL_SECONDS == {work.ttl_seconds}\n"
         "    clock.now += mod.TOKEN_TTL_SECONDS - 1\n    auth.verify(session.token)\n"
         "    clock.now += 1\n    with pytest.raises(mod.AuthError):\n"
         "        auth.verify(session.token)\n"),
        ("test_password_hashed_and_token_hidden",
         "Passwords are stored as salted hashes; tokens never show in a repr.",
         clock + setup + '    assert b"correct horse" not in repr(vars(auth)).encode()\n'
         '    session = auth.sign_in("dana@example.com", "correct horse")\n'
         "    assert session.token not in repr(session)\n"),
    ]


_CLOCK = '''

class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now
'''


def test_file(path: str, work: Work) -> tuple[str, str]:
    target = _module_for(path, work)
    rel = posixpath.relpath(target, posixpath.dirname(path) or ".")
    stem = re.sub(r"\W", "_", posixpath.splitext(posixpath.basename(target))[0])
    tests = _tests(work)
    for i, finding in enumerate(work.findings, 1):
        name, _doc_text, body = _closest(finding, tests)
        tests.append((f"test_qa_finding_{i}", f"QA finding: {finding}", body))
    head = [f'"""Tests of {doc_text(work.title)} ({work.ids_text})."""', "",
            "from __future__ import annotations", "", "import importlib.util", "import sys",
            "from pathlib import Path", "", "import pytest", "",
            f'MODULE_PATH = (Path(__file__).resolve().parent / "{rel}").resolve()', "",
            "if not MODULE_PATH.exists():",
            '    pytest.skip(f"{MODULE_PATH} is not written yet", allow_module_level=True)',
            "", "", "def _load():",
            f'    spec = importlib.util.spec_from_file_location("{stem}_under_test", MODULE_PATH)',
            "    assert spec is not None and spec.loader is not None",
            "    module = importlib.util.module_from_spec(spec)",
            "    sys.modules[spec.name] = module", "    spec.loader.exec_module(module)",
            "    return module", "", "", "mod = _load()"]
    code = "\n".join(head) + "\n"
    if work.auth:
        code += _CLOCK
    for name, doc, body in tests:
        doc_line = doc_text(" ".join(doc.split()))
        if len(doc_line) > 88:
            doc_line = doc_line[:85] + "..."
        code += f'\n\ndef {name}() -> None:\n    """{doc_line}"""\n{body}'
    return code, f"{len(tests)} pytest tests"


def _module_for(path: str, work: Work) -> str:
    modules = [p for p in work.files if p.endswith(".py") and p != path
               and not re.match(r"^test_|.*_test\.py$", posixpath.basename(p))]
    stem = re.sub(r"^test_|_test$", "", posixpath.splitext(posixpath.basename(path))[0])
    same = [p for p in modules if posixpath.splitext(posixpath.basename(p))[0] == stem]
    if same or modules:
        return (same or modules)[0]
    root = posixpath.dirname(posixpath.dirname(path)) if "/" in path else ""
    return posixpath.join(root, "src", f"{stem}.py")


def _closest(finding: str, tests: list[tuple[str, str, str]]) -> tuple[str, str, str]:
    wanted = set(content_words(finding))
    scored = [(len(wanted & set(content_words(f"{n.replace('_', ' ')} {d}"))), -i)
              for i, (n, d, _) in enumerate(tests)]
    best = max(scored)
    return tests[-best[1]]
