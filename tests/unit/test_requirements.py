"""Pure rules of the core for specs as people write them: assigned requirement ids (stable
across rounds), what changed between rounds, which files are specs, readable project ids."""

from __future__ import annotations

from orchestrator.core.requirements import (
    SpecItem,
    assign_requirement_ids,
    defined_requirements,
    requirement_changes,
    section_areas,
)
from orchestrator.core.specs import (
    MAX_SPEC_BYTES,
    project_id_for,
    slug,
    spec_size_error,
    why_not_a_spec,
)

BULLETS = """\
---
owner: ana
---
# Horta comunitária

Autor: Ana

Um aplicativo para organizar a horta do bairro.

## Servidor
- Os moradores se cadastram com e-mail.
- Cada canteiro tem um responsável
  e uma data de plantio.
  - com a cultura plantada

## Aplicativo web
1. A página mostra os canteiros livres.
2) O responsável marca a colheita.

```
- not a requirement: code
```
"""


def texts(spec: str, previous: dict[str, str] | None = None) -> list[tuple[str, str]]:
    return [(i.id, i.text) for i in assign_requirement_ids(spec, previous)]


def test_list_items_of_any_language_get_ids_in_order_with_wrapped_and_nested_lines() -> None:
    items = assign_requirement_ids(BULLETS)
    assert [(i.id, i.section) for i in items] == [
        ("FR-1", "Servidor"), ("FR-2", "Servidor"), ("FR-3", "Aplicativo web"),
        ("FR-4", "Aplicativo web")]
    assert items[1].text == ("Cada canteiro tem um responsável e uma data de plantio. "
                             "com a cultura plantada")
    assert section_areas(items) == {"FR-1": "Servidor", "FR-2": "Servidor",
                                    "FR-3": "Aplicativo web", "FR-4": "Aplicativo web"}


def test_prose_sentences_are_requirements_when_there_is_no_list() -> None:
    spec = ("# 会议室预订\n\nAuthor: Li\n\nPeople book rooms from the browser. Two bookings "
            "never overlap! 每个人 在 会议 开始前 收到 提醒。\n")
    assert texts(spec) == [("FR-1", "People book rooms from the browser."),
                           ("FR-2", "Two bookings never overlap!"),
                           ("FR-3", "每个人 在 会议 开始前 收到 提醒。")]
    assert section_areas(assign_requirement_ids(spec)) == {"FR-1": "", "FR-2": "", "FR-3": ""}


def test_table_rows_are_requirements_and_the_header_is_not() -> None:
    spec = "# T\n\n| Requirement | Area |\n|---|---|\n| Book a room | web |\n| Remind | api |\n"
    assert texts(spec) == [("FR-1", "Book a room \u2014 web"), ("FR-2", "Remind \u2014 api")]


def test_a_spec_with_its_own_ids_gets_none_assigned() -> None:
    assert assign_requirement_ids("# T\n\n- FR-1: one\n- Something else\n") == []


def test_ids_are_kept_across_rounds_for_same_and_edited_items() -> None:
    first = {i.id: i.text for i in assign_requirement_ids(BULLETS)}
    edited = (BULLETS.replace("tem um responsável", "tem um único responsável")
              .replace("- Os moradores se cadastram com e-mail.\n",
                       "- Uma regra nova de rega semanal.\n- Os moradores se cadastram com e-mail.\n")
              .replace("2) O responsável marca a colheita.\n", ""))
    second = {i.id: i.text for i in assign_requirement_ids(edited, first)}
    assert list(second) == ["FR-5", "FR-1", "FR-2", "FR-3"]  # new item: next free number
    assert second["FR-1"] == first["FR-1"]
    assert requirement_changes(first, second) == (["FR-5"], ["FR-2"], ["FR-4"])
    # A removed id is never given to another requirement later.
    third = assign_requirement_ids(edited + "- Outra coisa totalmente diferente aqui.\n", second)
    assert [i.id for i in third][-1] == "FR-6"


def test_which_files_under_specs_start_projects() -> None:
    ignored = ["specs/archive/"]
    assert why_not_a_spec("specs/a.md", "# A\n", ignored) is None
    assert why_not_a_spec("specs/README.md", "# A\n", ignored) == "a README"
    assert why_not_a_spec("specs/sub/readme.pt.md", "# A\n", ignored) == "a README"
    assert "ignores" in str(why_not_a_spec("specs/archive/x/old.md", "# A\n", ignored))
    assert "orch: ignore" in str(why_not_a_spec("specs/a.md", "---\norch: ignore\n---\n# A", []))
    assert why_not_a_spec("specs/a.md", "# A\n\norch: ignore\n", []) is None  # not front matter
    assert why_not_a_spec("specs/notes.txt", "x", []) == "not a Markdown file"


def test_size_limit_and_readable_project_ids() -> None:
    assert spec_size_error("specs/a.md", MAX_SPEC_BYTES) is None
    assert f"limit of {MAX_SPEC_BYTES} bytes" in str(spec_size_error("specs/a.md",
                                                                     MAX_SPEC_BYTES + 1))
    assert project_id_for("specs/Horta Comunitária.md", set()) == "horta-comunitaria"
    assert project_id_for("specs/Straße über Köln.markdown", set()) == "strasse-uber-koln"
    assert project_id_for("specs/plan.md", {"plan", "plan-2"}) == "plan-3"
    assert project_id_for("specs/!!!.md", set()) == "project"
    assert slug("Москва") == "moskva"


def test_a_spec_s_own_ids_come_with_its_whole_words_and_section() -> None:
    spec = ("# Notes\n\n## Web\n\n### FR-1: Create notes\n\nUsers create notes with a title."
            "\n\n## Other\n\n**FR-2**: The API stores notes\n  in a database.\n\n"
            "- NFR-1: Pages load fast,\n  even on a phone.\n\n"
            "| id | text |\n|---|---|\n| FR-3 | The app lists notes |\n\n"
            "FR-1 is mentioned again here, which defines nothing.\n")
    assert defined_requirements(spec) == [
        SpecItem("FR-1", "Create notes. Users create notes with a title.", "Web"),
        SpecItem("FR-2", "The API stores notes", "Other"),
        SpecItem("NFR-1", "Pages load fast, even on a phone.", "Other"),
        SpecItem("FR-3", "The app lists notes", "Other"),
    ]
    assert defined_requirements("# No ids\n\n- Users sign in.\n") == []
