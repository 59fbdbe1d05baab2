"""The pure review-on-GitHub rules: plain pull request states and reviews in, decisions out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.core import pull_requests as pr

T0 = datetime(2026, 3, 1, 12, 0, 0, 500_000, tzinfo=UTC)
ALICE = pr.Person("alice")
BOB = pr.Person("bob")
BOT = pr.Person("ci-helper", kind="Bot")
BRACKET_BOT = pr.Person("dependabot[bot]")
ORCH = pr.Person("orch-app")
WRITERS = {"alice": "write", "bob": "admin", "reader": "read"}


def counts(person: pr.Person) -> bool:
    return pr.trusted(person, "orch-app", WRITERS.get(person.login))


def pull(state: str = "open", merged: bool = False) -> pr.PullState:
    return pr.PullState(number=7, head="orch/p/t1", base="main", state=state, merged=merged,
                        url="https://h/o/r/pull/7", merged_by=ALICE if merged else None)


def review(rid: int, who: pr.Person, state: str, body: str = "", after_s: int = 5,
           comments: tuple[pr.LineComment, ...] = ()) -> pr.PullReview:
    return pr.PullReview(id=rid, author=who, state=state, body=body,
                         submitted_at=T0 + timedelta(seconds=after_s),
                         url=f"https://h/o/r/pull/7#pullrequestreview-{rid}", comments=comments)


def test_a_merge_is_an_approval_whatever_the_merge_method() -> None:
    # Squash and rebase merges leave the head's commits off the base: only `merged` tells.
    decision = pr.decide(pull("closed", merged=True), [], counts, T0, set())
    assert decision == pr.Approve(merged=True, by="alice", url="https://h/o/r/pull/7")


def test_closed_unmerged_abandons() -> None:
    assert isinstance(pr.decide(pull("closed"), [], counts, T0, set()), pr.Abandon)


def test_a_task_that_does_not_wait_has_nothing_to_decide() -> None:
    assert pr.decide(pull("closed", merged=True), [], counts, None, set()) is None


def test_request_changes_with_three_comments_is_one_rejection_with_three_findings() -> None:
    comments = (pr.LineComment("a.py", 3, "off by one"), pr.LineComment("b.py", 9, "name it"),
                pr.LineComment("c.md", None, "typo"))
    decision = pr.decide(pull(), [review(11, ALICE, "CHANGES_REQUESTED", comments=comments)],
                         counts, T0, set())
    assert isinstance(decision, pr.Reject)
    assert decision.review_id == 11
    assert decision.findings == ("a.py:3: off by one", "b.py:9: name it", "c.md: typo")


def test_the_review_body_is_a_finding_too() -> None:
    rv = review(11, ALICE, "CHANGES_REQUESTED", "Please split this.",
                comments=(pr.LineComment("a.py", 1, "x"),))
    assert pr.review_findings(rv) == ("Please split this.", "a.py:1: x")


def test_a_bare_change_request_still_carries_a_finding() -> None:
    (only,) = pr.review_findings(review(11, ALICE, "CHANGES_REQUESTED"))
    assert "alice" in only


def test_a_long_comment_is_cut_with_a_pointer_to_the_review() -> None:
    (only,) = pr.review_findings(review(11, ALICE, "CHANGES_REQUESTED", "x" * 10_000))
    assert len(only) < 4200 and "pullrequestreview-11" in only


def test_a_review_already_recorded_is_never_recorded_again() -> None:
    reviews = [review(11, ALICE, "CHANGES_REQUESTED", "no")]
    assert pr.decide(pull(), reviews, counts, T0, {11}) is None


def test_bots_orch_and_readers_are_ignored() -> None:
    for who in (BOT, BRACKET_BOT, ORCH, pr.Person("reader"), pr.Person("stranger")):
        reviews = [review(12, who, "CHANGES_REQUESTED", "loop?")]
        assert pr.decide(pull(), reviews, counts, T0, set()) is None, who
    assert not pr.needs_permission_check(BRACKET_BOT, "orch-app")
    assert not pr.needs_permission_check(pr.Person("ORCH-APP"), "orch-app")
    assert pr.needs_permission_check(ALICE, "orch-app")


def test_a_review_from_before_the_wait_is_about_older_work() -> None:
    reviews = [review(11, ALICE, "CHANGES_REQUESTED", "old", after_s=-60)]
    assert pr.decide(pull(), reviews, counts, T0, set()) is None
    # The host counts whole seconds: a review in the same second as the wait still counts.
    same_second = [review(12, ALICE, "APPROVED", after_s=0)]
    assert isinstance(pr.decide(pull(), same_second, counts, T0, set()), pr.Approve)


def test_the_latest_decisive_review_wins_and_comments_decide_nothing() -> None:
    reviews = [review(11, ALICE, "CHANGES_REQUESTED", "no", after_s=5),
               review(12, BOB, "APPROVED", after_s=9),
               review(13, ALICE, "COMMENTED", "nice", after_s=12)]
    decision = pr.decide(pull(), reviews, counts, T0, set())
    assert decision == pr.Approve(merged=False, by="bob", review_id=12,
                                  url="https://h/o/r/pull/7#pullrequestreview-12")
    only_comments = [review(13, ALICE, "COMMENTED", "nice")]
    assert pr.decide(pull(), only_comments, counts, T0, set()) is None


def test_openings_hold_the_cap_and_queue_the_rest_in_order() -> None:
    plan = pr.plan_openings(["t1", "t2", "t3", "t4"], with_pull={"t1"}, open_count=1, cap=2)
    assert plan == pr.Openings(open_now=["t2"], queued=["t3", "t4"])
    # Pull requests people opened on orch branches count against the cap too.
    assert pr.plan_openings(["t1"], set(), open_count=5, cap=2).queued == ["t1"]


def test_webhook_payloads_narrow_or_are_ignored() -> None:
    base = {"pull_request": {"number": 4, "head": {"ref": "orch/p/t1"}},
            "sender": {"login": "alice", "type": "User"}}
    assert pr.trigger_of(base) == pr.Trigger(pull=4)
    assert pr.trigger_of({"ref": "refs/heads/main"}) == pr.Trigger()
    by_bot = {**base, "sender": {"login": "github-actions[bot]", "type": "Bot"}}
    assert pr.trigger_of(by_bot).ignored
    review_by_bot = {**base, "review": {"user": {"login": "x", "type": "Bot"}}}
    assert pr.trigger_of(review_by_bot).ignored
    by_orch = {**base, "sender": {"login": "orch-app", "type": "User"}}
    assert pr.trigger_of(by_orch, own_login="orch-app").ignored
    other = {"pull_request": {"number": 5, "head": {"ref": "feature/x"}}}
    assert "not an orch task branch" in pr.trigger_of(other).ignored
    assert pr.trigger_of({"pull_request": {"number": "5"}}).ignored


def test_the_pull_request_body_carries_the_brief_and_where_the_events_are() -> None:
    brief = "[TASK]\nBuild it\n\n[RELEVANT COMPLETE CONTEXT]\nctx\n\n[EXPECTED RETURN]\nfiles"
    body = pr.pull_body(brief, "https://h/o/r/tree/main/.orchestrator/events/p", "p", "t1")
    assert body.startswith(brief) and "/.orchestrator/events/p" in body
    assert "[TASK]" in pr.pull_body("", "u", "p", "t1")


def test_qa_comment_carries_its_marker() -> None:
    text = pr.qa_comment("passed", "All good", "01HQAEVENT")
    assert pr.QA_MARKER.format(qa_event="01HQAEVENT") in text and "All good" in text
