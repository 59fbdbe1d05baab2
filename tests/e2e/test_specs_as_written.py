"""Specs as people write them, run to completion by `orch run`: prose without ids, Portuguese
with ids, forty requirements; offline and through the OpenAI-compatible provider (the real
client against a local server answering like the offline team). Every requirement lands in
a task, and the squads are the areas the spec names."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_orch
from tests.support.fake_openai import FakeOpenAI
from tests.support.sandbox import FAST_QA
from tests.support.scripted_team import ScriptedTeam

PROSE = """\
# Room booking for a small office

People in the office book meeting rooms from their browser. A booking names a room, a
start time, an end time and the person who made it. Two bookings of the same room never
overlap: the second one is refused with a message that names the first. Everyone gets a
reminder fifteen minutes before their booking starts. An admin can close a room for
maintenance, which cancels its bookings and tells their owners.
"""

PORTUGUESE = """\
# Biblioteca do bairro

Autor: Marta Lima

Um sistema simples para a biblioteca comunitária emprestar livros aos vizinhos.

## Servidor

- FR-1: O servidor cadastra livros com título, autor e ano de publicação.
- FR-2: Cada empréstimo registra o leitor, o livro e a data de devolução prevista.
- FR-3: Um livro emprestado não pode ser emprestado de novo antes da devolução.

## Aplicativo móvel

- FR-4: O leitor procura livros pelo título ou pelo autor.
- FR-5: O leitor vê os seus empréstimos e as datas de devolução.

## Requisitos não funcionais

- NFR-1: As respostas do servidor chegam em menos de 300 ms para 20 leitores ao mesmo tempo.
"""

AREAS = ("Catalogue", "Orders", "Payments", "Reports")
FORTY = "# A shop with forty requirements\n\n" + "\n".join(
    f"## {area}\n\n" + "\n".join(
        f"- FR-{i * 10 + n}: The {area.lower()} part handles case {n} of {area.lower()}, "
        f"with its own rule number {i * 10 + n} checked on every request."
        for n in range(1, 11)) + "\n"
    for i, area in enumerate(AREAS))

SPECS = {
    "room-booking": (PROSE, 5, None),
    "biblioteca-do-bairro": (PORTUGUESE, 6, {"servidor", "aplicativo-movel"}),
    "forty-requirements": (FORTY, 40, {a.lower() for a in AREAS}),
}


def _config(provider: str, base_url: str = "") -> dict[str, Any]:
    llm: dict[str, Any] = {"provider": provider}
    if provider == "openai":
        llm.update(base_url=base_url, model="test-model", timeout_s=10, max_retries=1,
                   max_output_tokens=4096)
    # Real checks (what a spec's code does is part of running it), with pytest's plugin
    # autoload off: a fifth of the CPU of the default command.
    return {"max_decomposition_depth": 0, "parallelism": 4, "llm": llm, "qa": FAST_QA}


@contextmanager
def _provider(kind: str) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    if kind == "offline":
        yield _config("offline"), {}
        return
    with FakeOpenAI(responder=ScriptedTeam()) as server:
        yield _config("openai", server.base_url), {"OPENAI_API_KEY": "sk-test-not-a-secret"}


def _repo(path: Path, name: str, text: str, config: dict[str, Any]) -> Path:
    path.mkdir(parents=True)
    run_orch(path, "init")
    (path / "specs" / f"{name}.md").write_text(text, encoding="utf-8")
    (path / ".orchestrator" / "config.yaml").write_text(json.dumps(config) + "\n")
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-qm", "a spec as a person wrote it"], cwd=path, check=True)
    return path


# Every spec offline, and through the OpenAI-compatible provider too except the forty-
# requirement one: the provider's path is the same at any size, and that run alone would
# cost the suite ~40 s.
@pytest.mark.parametrize(("name", "provider"), [
    (name, provider) for name in sorted(SPECS) for provider in ("offline", "openai")
    if (name, provider) != ("forty-requirements", "openai")])
def test_a_spec_as_written_runs_to_completion(tmp_path: Path, name: str,
                                              provider: str) -> None:
    text, count, areas = SPECS[name]
    with _provider(provider) as (config, env):
        repo = _repo(tmp_path / "repo", name, text, config)
        run_orch(repo, "run", env=env, timeout=300)
    [view] = json.loads(run_orch(repo, "status", "--json").stdout)["projects"]
    assert (view["id"], view["status"]) == (name, "completed")
    [review] = json.loads(run_orch(repo, "log", name, "--json", "--type",
                                   "spec.reviewed").stdout)
    requirements = review["payload"]["requirements"]
    assert len(requirements) == count
    in_tasks = {r for t in view["tasks"] for r in t["requirements"]}
    assert set(requirements) <= in_tasks
    squads = {m["name"] for m in view["modules"]}
    if areas is not None:  # split squads keep their area's name: payments-basic, ...
        assert {s.removesuffix("-basic").removesuffix("-advanced") for s in squads} == areas
    doc = (repo / review["payload"]["doc"]).read_text(encoding="utf-8")
    assert all(f"| {r} |" in doc for r in requirements)  # the ids are in the spec review


def test_ids_assigned_to_a_prose_spec_are_recorded_and_cover_every_sentence(
    tmp_path: Path
) -> None:
    repo = _repo(tmp_path / "repo", "room-booking", PROSE, _config("offline"))
    run_orch(repo, "run")
    [review] = json.loads(run_orch(repo, "log", "--json", "--type", "spec.reviewed").stdout)
    payload = review["payload"]
    assert payload["ids_assigned"] is True
    assert payload["requirements"] == [f"FR-{n}" for n in range(1, 6)]
    texts = " ".join(d["text"] for d in payload["details"])
    assert "never overlap" in texts and "maintenance" in texts
    doc = (repo / payload["doc"]).read_text(encoding="utf-8")
    assert "assigned by the CTO" in doc
