"""The pairwise judge: verdict parsing, position randomisation, win rate."""

from __future__ import annotations

import math

from repro.dynamo.judge import TEMPLATE, PairwiseJudge, parse_verdict, win_rate


def test_parse_verdict_takes_the_first_bracketed_letter():
    assert parse_verdict("I think [[B]] because ... not [[A]]") == "B"
    assert parse_verdict("[[C]]") == "C"
    assert parse_verdict("A is better") is None and parse_verdict("[[D]]") is None


def test_the_candidate_wins_wherever_it_is_placed():
    seen = []

    def prefers_candidate(text: str) -> str:
        # the judge recognises the candidate's text and names its slot
        a = text.split("[Continuation A]\n")[1].split("\n\n")[0]
        seen.append(a == "good")
        return "[[A]]" if a == "good" else "[[B]]"

    judge = PairwiseJudge(prefers_candidate, seed=0)
    outcomes = [judge.compare("p", "good", "bad") for _ in range(200)]
    assert set(outcomes) == {"win"}
    assert 60 < sum(seen) < 140  # the order is randomised (binomial(200, 0.5) within ~5.6 sd)


def test_ties_invalid_and_position_bias():
    assert PairwiseJudge(lambda t: "[[C]]").compare("p", "x", "y") == "tie"
    assert PairwiseJudge(lambda t: "no idea").compare("p", "x", "y") == "invalid"
    always_a = PairwiseJudge(lambda t: "[[A]]", seed=1)
    outcomes = [always_a.compare("p", "x", "y") for _ in range(400)]
    rate = win_rate(outcomes)
    # a judge that always picks slot A gives wins and losses in equal expectation: win rate near 1
    assert rate["wins"] + rate["losses"] == 400 and 0.7 < rate["win_rate"] < 1.4


def test_win_rate_counts():
    r = win_rate(["win", "win", "loss", "tie", "invalid"])
    assert (r["wins"], r["losses"], r["ties"], r["invalid"], r["win_rate"]) == (2, 1, 1, 1, 2.0)
    assert math.isnan(win_rate(["win", "tie"])["win_rate"])
    assert "{prompt}" in TEMPLATE and "[[C]]" in TEMPLATE
