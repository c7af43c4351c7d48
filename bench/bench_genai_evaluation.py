"""Local Gen AI evaluation and safety: EvalTask over computed metrics (rows per second,
against rouge-score and sacrebleu called directly), seconds per row judged by the local
Gemma on a default template (FLUENCY), against the judge called in-process; and
generate_content with safety settings against the same call without (the prompt screen's
cost). Smoke mode uses a handful of rows and one row judged on a short template."""

from __future__ import annotations

import time


def run(smoke: bool = False) -> list[dict]:
    import pandas as pd
    import sacrebleu
    import vertexai
    from google import genai
    from google.genai import types
    from rouge_score import rouge_scorer
    from vertexai.evaluation import EvalTask

    import labkit

    labkit.start()
    vertexai.init()
    n = 4 if smoke else 40
    df = pd.DataFrame({"response": [f"the cat {i} sat on the mat" for i in range(n)],
                       "reference": [f"a cat {i} sat on a mat" for i in range(n)]})
    task = EvalTask(dataset=df[:1], metrics=["bleu", "rouge_l_sum"])
    task.evaluate()  # warm: the services import sacrebleu and rouge-score (nltk) once
    started = time.perf_counter()
    # the SDK limits itself to 10 requests/s unless told otherwise
    EvalTask(dataset=df, metrics=["bleu", "rouge_l_sum"]).evaluate(evaluation_service_qps=1000)
    service = n / (time.perf_counter() - started)
    started = time.perf_counter()
    scorer = rouge_scorer.RougeScorer(["rougeLsum"])
    for p, r in zip(df.response, df.reference, strict=True):
        sacrebleu.sentence_bleu(p, [r])
        scorer.score(r, p)
    direct = n / (time.perf_counter() - started)
    rows = [{"name": f"evaluation: EvalTask rows/s, bleu + rouge_l_sum ({n} rows)",
             "value": service, "unit": "rows/s", "baseline": direct,
             "ratio": service / direct}]

    rows.append(_judged(smoke))
    client = genai.Client()
    plain = types.GenerateContentConfig(max_output_tokens=8, temperature=0)
    screened = types.GenerateContentConfig(max_output_tokens=8, temperature=0, safety_settings=[
        types.SafetySetting(category=c, threshold="BLOCK_MEDIUM_AND_ABOVE")
        for c in ("HARM_CATEGORY_HATE_SPEECH", "HARM_CATEGORY_HARASSMENT")])
    times = {}
    for label, config in (("plain", plain), ("screened", screened)):
        client.models.generate_content(model="gemini-2.5-flash", contents="Hello", config=config)
        started = time.perf_counter()
        for _ in range(1 if smoke else 3):
            client.models.generate_content(model="gemini-2.5-flash",
                                           contents="Name a colour.", config=config)
        times[label] = (time.perf_counter() - started) / (1 if smoke else 3)
    rows.append({"name": "safety: generate_content, two safety settings vs none (8 tokens; "
                         "both rate the answer, settings add the prompt's screen)",
                 "value": times["screened"], "unit": "s", "baseline": times["plain"],
                 "ratio": times["screened"] / times["plain"]})
    return rows


def _judged(smoke: bool) -> dict:
    """A row judged through EvalTask, against the judge in this process (a second copy of
    the model, so not in smoke mode, which judges one row on a short template)."""
    import pandas as pd
    from vertexai.evaluation import EvalTask, MetricPromptTemplateExamples, PointwiseMetric

    from labkit.genai.engine import Engine
    from labkit.genai.evaluation.judge import Judge

    row = {"prompt": "What is the capital of France?",
           "response": "The capital of France is Paris."}
    if smoke:
        metric = PointwiseMetric(metric="short", metric_prompt_template=(
            "Is the answer short?\n## Rating Rubric\n1: yes\n0: no\nAnswer: {response}"))
        started = time.perf_counter()
        EvalTask(dataset=pd.DataFrame([row]), metrics=[metric]).evaluate()
        return {"name": "evaluation: seconds to judge one row (short template, with the "
                        "model's first load)", "value": time.perf_counter() - started,
                "unit": "s"}
    fluency = MetricPromptTemplateExamples.Pointwise.FLUENCY
    task = EvalTask(dataset=pd.DataFrame([row] * 3), metrics=[fluency])
    task.evaluate()  # the services load the model
    started = time.perf_counter()
    task.evaluate()
    per_row = (time.perf_counter() - started) / 3
    judge = Judge(Engine())
    judge.pointwise(fluency.metric_prompt_template, row)  # loads this process's copy
    started = time.perf_counter()
    judge.pointwise(fluency.metric_prompt_template, row)
    direct = time.perf_counter() - started
    return {"name": "evaluation: seconds per row judged by Gemma (FLUENCY template, ~400 "
                    "tokens)", "value": per_row, "unit": "s", "baseline": direct,
            "ratio": per_row / direct}
