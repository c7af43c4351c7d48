"""Exam-style practice at the end of each lab: scenario questions, multiple choice and
multiple select as on the exam, each tied to the lab's exam guide sections and to the part
of the lab that shows the answer.

    from labkit import quiz
    quiz.show("07")                       # the questions
    quiz.check("07", {1: "B", 2: ["A", "D"]})   # right or not, and why, for each answer

The questions live in `labkit/questions/NN.json`. `make grade` leaves them out of a grade
unless the instructor asks (`--quiz`): then a wrong or missing answer fails the cell.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from labkit.checks import CheckFailed

QUESTIONS = Path(__file__).parent / "questions"
GRADED_ENV = "LABKIT_QUIZ_GRADED"  # set by `make grade ... QUIZ=1`


@dataclass(frozen=True)
class Question:
    number: int
    sections: tuple[str, ...]
    scenario: str
    options: dict[str, str]  # letter -> text
    answer: frozenset[str]
    explanation: str
    see: str  # the lab's heading whose cells show the answer
    source: str  # Google's page that states the fact

    @property
    def choose(self) -> int:
        return len(self.answer)


def lab_key(lab: str) -> str:
    """`07`, `07_generative_ai` -> `07`."""
    return str(lab).split("_", 1)[0].zfill(2)


def questions(lab: str) -> list[Question]:
    path = QUESTIONS / f"{lab_key(lab)}.json"
    if not path.exists():
        raise ValueError(f"No practice questions for lab {lab!r} ({path.name})")
    return [Question(number=i, sections=tuple(q["sections"]), scenario=q["scenario"],
                     options=dict(q["options"]), answer=frozenset(q["answer"]),
                     explanation=q["explanation"], see=q["see"], source=q["source"])
            for i, q in enumerate(json.loads(path.read_text()), 1)]


def render(question: Question) -> str:
    choose = " (Choose two.)" if question.choose == 2 else (
        f" (Choose {question.choose}.)" if question.choose > 2 else "")
    options = "\n".join(f"- **{k}.** {v}" for k, v in question.options.items())
    return (f"**Question {question.number}** (exam {', '.join(question.sections)})\n\n"
            f"{question.scenario}{choose}\n\n{options}")


def show(lab: str) -> None:
    """Displays the lab's questions (as Markdown in a notebook, as text elsewhere)."""
    text = "\n\n".join(render(q) for q in questions(lab))
    try:
        from IPython.display import Markdown, display

        display(Markdown(text))
    except ImportError:
        print(text)


def _letters(value) -> frozenset[str]:
    items = [value] if isinstance(value, str) else list(value)
    return frozenset(str(item).strip().upper() for item in items)


def check(lab: str, answers: dict) -> int:
    """Says for each answered question whether it is right, and why; returns the number
    right. Unanswered questions are listed, never explained (so nothing is given away)."""
    if not isinstance(answers, dict):
        raise CheckFailed("answers should be a dict such as {1: 'B', 2: ['A', 'D']}.")
    all_questions = questions(lab)
    known = {q.number for q in all_questions}
    unknown = sorted(set(answers) - known, key=str)
    if unknown:
        raise CheckFailed(f"there is no question {unknown[0]!r}; the questions are "
                          f"1 to {len(all_questions)}.")
    right, wrong, missing = 0, [], []
    for q in all_questions:
        if q.number not in answers or answers[q.number] in (None, "", []):
            missing.append(q.number)
            continue
        given = _letters(answers[q.number])
        bad = sorted(given - set(q.options))
        if bad:
            raise CheckFailed(f"question {q.number} has no option {bad[0]!r}; "
                              f"its options are {', '.join(q.options)}.")
        correct = given == q.answer
        right += correct
        if not correct:
            wrong.append(q.number)
        verdict = "right" if correct else f"not quite: the answer is {', '.join(sorted(q.answer))}"
        print(f"Question {q.number}: {verdict}.\n  {q.explanation}\n"
              f"  In this lab: \"{q.see}\". Source: {q.source}\n")
    print(f"{right}/{len(all_questions)} right"
          + (f"; not answered yet: {missing}" if missing else ""))
    if os.environ.get(GRADED_ENV) and (wrong or missing):
        raise CheckFailed(f"practice questions: wrong {wrong}, not answered {missing}.")
    return right
