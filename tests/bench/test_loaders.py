"""Loaders for standard data files, on small generated files, and their verifiers."""

import asyncio
import json

import pytest

from reasonloop.bench import load_tasks, run_bench
from reasonloop.bench.loaders import LOADERS, file_suite, hotpot_corpus
from reasonloop.bench.verifiers import last_boxed, token_f1
from reasonloop.errors import ConfigError, UnknownNameError


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_gsm8k(tmp_path):
    path = write_jsonl(tmp_path / "gsm8k.jsonl", [
        {"question": "Tom has 3 boxes of 12 eggs. How many eggs?", "answer": "3 * 12 = <<3*12=36>>36\n#### 36"},
        {"question": "A farm sells 1,250 apples.", "answer": "#### 1,250"},
        "{broken",
        {"question": "No final line", "answer": "42"},
        {"question": "Negative", "answer": "#### -7"},
    ])  # fmt: skip
    loaded = load_tasks("gsm8k", path)
    assert [t.answer for t in loaded.tasks] == ["36", "1250", "-7"]
    assert [n for n, _ in loaded.skipped] == [3, 4] and "#### N" in loaded.skipped[1][1]
    first = loaded.tasks[0]
    assert first.verifier == "numeric" and first.id == "gsm8k-1" and "<answer>" in first.prompt
    assert first.verify("36").correct and first.verify("The answer is 36 eggs").correct and not first.verify("37").correct
    assert len(load_tasks("gsm8k", path, limit=2).tasks) == 2


def test_math_uses_math_verify(tmp_path):
    path = write_jsonl(tmp_path / "math.jsonl", [
        {"problem": "What is $1/2 + 1/4$?", "solution": "We add: $\\boxed{\\frac{3}{4}}$.", "level": "Level 1"},
        {"problem": "Solve $x^2=4$, $x>0$.", "answer": "2"},
        {"problem": "No answer here", "solution": "none"},
    ])  # fmt: skip
    loaded = load_tasks("math", path)
    frac, two = loaded.tasks
    assert frac.answer == "\\frac{3}{4}" and frac.metadata == {"level": "Level 1"} and len(loaded.skipped) == 1
    assert frac.verify("0.75").correct and frac.verify("\\frac{6}{8}").correct and frac.verify("3/4").correct
    assert not frac.verify("0.7").correct and not frac.verify("\\frac{1}{4}").correct
    assert two.verify("2").correct and not two.verify("-2").correct
    assert last_boxed("a \\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}" and last_boxed("x") is None


def test_hotpotqa_json_list_em_f1_and_corpus(tmp_path):
    rows = [
        {"_id": "a1", "question": "Which band formed first?", "answer": "Oasis", "type": "comparison",
         "context": [["Oasis (band)", ["Oasis were formed in 1991.", " They are from Manchester."]],
                     ["Blur", ["Blur formed in 1988."]]]},
        {"_id": "a2", "question": "Who wrote Dune?", "answer": "Frank Herbert",
         "context": [["Dune", ["Dune is a novel by Frank Herbert."]], ["Blur", ["duplicate title, skipped"]]]},
        {"_id": "a1", "question": "dup id", "answer": "x"},
    ]  # fmt: skip
    path = tmp_path / "hotpot.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    loaded = load_tasks("hotpotqa", path)
    oasis, dune = loaded.tasks
    assert loaded.skipped == [(3, "duplicate id hotpotqa-a1")]
    assert oasis.id == "hotpotqa-a1" and oasis.tools == ["search"] and oasis.verifier == "qa-f1"
    assert oasis.verify("oasis.").correct and oasis.verify("The Oasis").score == 1.0
    partial = dune.verify("Herbert")
    assert not partial.correct and partial.score == pytest.approx(token_f1("Herbert", "Frank Herbert")) == pytest.approx(2 / 3)
    assert {d["id"] for d in hotpot_corpus(path)} == {"Oasis (band)", "Blur", "Dune"}
    suite = file_suite(f"hotpotqa:{path}")
    toolset = suite.toolset(suite.generate(5), cache_dir=tmp_path / "cache")
    found = asyncio.run(toolset["search"]({"query": "novel Dune", "k": 1}))
    assert found.ok and "(source: Dune)" in found.output and "Frank Herbert" in found.output
    assert token_f1("yes", "no") == 0.0 and token_f1("yes", "yes") == 1.0


def test_folio_and_proofwriter_labels(tmp_path):
    folio = write_jsonl(tmp_path / "folio.jsonl", [
        {"premises": ["All cats are mammals.", "Tom is a cat."], "conclusion": "Tom is a mammal.", "label": "True"},
        {"premises": "Some birds fly.", "conclusion": "Tweety flies.", "label": "Uncertain"},
        {"premises": "x", "conclusion": "y", "label": "Maybe"},
    ])  # fmt: skip
    loaded = load_tasks("folio", folio)
    true, unknown = loaded.tasks
    assert "label 'Maybe'" in loaded.skipped[0][1]
    assert true.answer == "true" and unknown.answer == "unknown" and true.tools == ["z3"]
    assert true.verify("True").correct and true.verify("It is true.").correct and not true.verify("False").correct
    assert unknown.verify("Uncertain").correct and unknown.verify("unknown").correct
    assert not true.verify("I cannot say").correct
    proof = write_jsonl(tmp_path / "pw.jsonl", [
        {"id": "p1", "theory": "The bear is big. If something is big then it is red.", "question": "The bear is red.",
         "answer": True},
        {"context": "The cat is blue.", "question": "The cat is red.", "label": "Unknown"},
    ])  # fmt: skip
    pw = load_tasks("proofwriter", proof).tasks
    assert [t.answer for t in pw] == ["true", "unknown"] and pw[0].id == "proofwriter-p1"
    assert "The bear is big" in pw[0].prompt


def test_pddl_folder_with_plans_runs_the_expert(tmp_path):
    from reasonloop.bench.planning import reference_plan
    from reasonloop.planners.generators import generate

    folder = tmp_path / "blocks"
    folder.mkdir()
    for i in range(1, 4):
        inst = generate("blocksworld", seed=i, n_blocks=4)
        (folder / "domain.pddl").write_text(inst.domain)
        (folder / f"p0{i}.pddl").write_text(inst.problem)
        if i < 3:
            (folder / f"p0{i}.plan").write_text("\n".join(reference_plan("blocksworld", inst.problem)))
    loaded = load_tasks("pddl", folder)
    assert [t.id for t in loaded.tasks] == ["pddl-blocks-p01", "pddl-blocks-p02", "pddl-blocks-p03"]
    assert [bool(t.expert) for t in loaded.tasks] == [True, True, False]
    assert loaded.tasks[0].verify(loaded.tasks[0].answer).correct
    assert not loaded.tasks[0].verify("(pick-up b1)").correct
    report = run_bench(f"pddl:{folder}", n=2, out_dir=tmp_path / "run", live=False, plots=False)
    assert report.pass_at_1 == 1.0 and report.tools["validate_plan"].calls == 2


def test_bad_inputs_are_reported(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_tasks("gsm8k", tmp_path / "missing.jsonl")
    (tmp_path / "x.json").write_text('{"rows": 1}')
    with pytest.raises(ConfigError, match="expected a list"):
        load_tasks("gsm8k", tmp_path / "x.json")
    with pytest.raises(UnknownNameError, match="gsm8k"):
        load_tasks("gsm9k", tmp_path / "x.json")
    with pytest.raises(ConfigError, match="KIND:PATH"):
        file_suite("gsm8k:")
    empty = write_jsonl(tmp_path / "empty.jsonl", [{"question": "q"}])
    with pytest.raises(ConfigError, match="no usable"):
        file_suite(f"gsm8k:{empty}").generate(3)
    with pytest.raises(ConfigError, match="not a folder"):
        load_tasks("pddl", tmp_path / "nope")
    assert set(LOADERS.names()) == {"folio", "gsm8k", "hotpotqa", "math", "proofwriter"}
