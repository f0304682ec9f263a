"""PDDL instance folders as planning tasks (see :mod:`reasonloop.bench.loaders` for the layout)."""

from __future__ import annotations

from pathlib import Path

from reasonloop.bench import planning as _planning  # noqa: F401  (registers the ``plan`` verifier)
from reasonloop.bench.loaders import LoadedTasks
from reasonloop.bench.task import ExpertTurn, Task
from reasonloop.errors import ConfigError

__all__ = ["load_pddl_folder"]

_MAX_FILE_CHARS = 1_000_000
_PLAN_SUFFIXES = (".plan", ".pddl.plan", ".soln")


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return text if len(text) <= _MAX_FILE_CHARS else None


def _domain_for(problem: Path, shared: Path | None) -> Path | None:
    stem = problem.stem
    for candidate in (problem.with_name(f"{stem}-domain.pddl"), problem.with_name(f"domain-{stem}.pddl")):
        if candidate.is_file():
            return candidate
    return shared


def _plan_for(problem: Path) -> Path | None:
    for suffix in _PLAN_SUFFIXES:
        candidate = problem.with_name(problem.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def _is_problem(path: Path) -> bool:
    name = path.name
    return name != "domain.pddl" and not name.startswith("domain-") and not name.endswith("-domain.pddl")


def load_pddl_folder(folder: str | Path, *, limit: int | None = None) -> LoadedTasks:
    """Tasks from ``folder``: each problem file with its domain (and its plan, as the expert)."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder of PDDL files")
    shared = root / "domain.pddl" if (root / "domain.pddl").is_file() else None
    out = LoadedTasks()
    problems = sorted(p for p in root.glob("*.pddl") if _is_problem(p))
    for number, problem in enumerate(problems, 1):
        if limit is not None and len(out.tasks) >= limit:
            break
        domain_path = _domain_for(problem, shared)
        domain, text = (_read(domain_path) if domain_path else None), _read(problem)
        if domain is None or text is None:
            out.skipped.append((number, f"{problem.name}: unreadable problem or no domain file"))
            continue
        plan_path = _plan_for(problem)
        plan = _read(plan_path) if plan_path else None
        check = {"domain": domain, "problem": text, "plan": plan or ""}
        expert = [ExpertTurn(text="I check the plan.", tool_calls=[("validate_plan", check)]),
                  ExpertTurn(text=f"The plan is valid.\n<answer>\n{plan}\n</answer>")] if plan else []  # fmt: skip
        prompt = (f"The domain in PDDL:\n{domain}\nThe problem in PDDL:\n{text}\nFind a plan; give it one PDDL action "
                  "per line inside <answer></answer> tags.")  # fmt: skip
        out.tasks.append(
            Task(id=f"pddl-{root.name}-{problem.stem}", suite="pddl", prompt=prompt, answer=plan or "",
                 tools=["plan", "validate_plan"], verifier="plan", expert=expert,
                 metadata={"domain": domain, "problem": text, "file": problem.name})
        )
    return out
