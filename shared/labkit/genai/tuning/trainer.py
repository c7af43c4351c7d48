"""The tuning job's child process: `python -m labkit.genai.tuning.trainer FOLDER`.

Reads FOLDER/spec.json (examples, rank, epochs, learning rate), trains LoRA adapters on the
local Gemma with TensorFlow, and writes FOLDER/progress.json after every step (losses,
steps per second) and, at the end, the adapters (lora.save). It runs outside the services
process so that a long job never holds up a request, and is cancelled by killing it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(folder: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from labkit.genai.gemma import Gemma3
    from labkit.genai.tokenizer import GemmaTokenizer
    from labkit.genai.tuning import lora
    from labkit.services.files import write_atomic

    spec = json.loads((folder / "spec.json").read_text())
    started = time.perf_counter()
    gemma = Gemma3()
    tokenizer = GemmaTokenizer(gemma.vocab)

    def sequences(examples):
        return [lora.truncated(lora.sequence(tokenizer, e["system"],
                                             [tuple(t) for t in e["turns"]]))
                for e in examples]

    train, validation = sequences(spec["train"]), sequences(spec["validation"])
    import tensorflow as tf

    tf.random.set_seed(spec["seed"])
    model = lora.LoraModel(gemma, spec["rank"], seed=spec["seed"])
    optimizer = tf.keras.optimizers.Adam(spec["learning_rate"])
    signature = [tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.bool)]

    @tf.function(input_signature=signature)
    def step(tokens, targets):
        with tf.GradientTape() as tape:
            total, count, right = model.losses(tokens, targets)
            mean = total / count
        grads = tape.gradient(mean, model.variables)
        optimizer.apply_gradients(zip(grads, model.variables, strict=True))
        return mean, right / count

    @tf.function(input_signature=signature)
    def evaluate_batch(tokens, targets):
        return model.losses(tokens, targets)

    batch = spec["batch_size"]

    def evaluate() -> dict | None:
        if not validation:
            return None
        total = count = right = 0.0
        for i in range(0, len(validation), batch):
            t, y = lora.batch_arrays(validation[i:i + batch])
            a, b, c = evaluate_batch(t, y)
            total, count, right = total + float(a), count + float(b), right + float(c)
        return {"loss": total / count, "fractionOfCorrectNextStepPreds": right / count}

    progress = {"step": 0, "totalSteps": spec["epochs"] * -(-len(train) // batch),
                "epoch": 0, "train": [], "eval": [], "loadSeconds": 0.0}

    def report(**fields) -> None:
        progress.update(fields)
        write_atomic(folder / "progress.json", json.dumps(progress))

    report(loadSeconds=time.perf_counter() - started)
    if (base := evaluate()) is not None:
        progress["eval"].append({"step": 0, **base})
    rng = np.random.default_rng(spec["seed"])
    timed_steps, timed_seconds = 0, 0.0
    epoch_seconds = []
    for epoch in range(spec["epochs"]):
        epoch_start = time.perf_counter()
        order = rng.permutation(len(train))
        for i in range(0, len(order), batch):
            t, y = lora.batch_arrays([train[j] for j in order[i:i + batch]])
            begin = time.perf_counter()
            loss, accuracy = step(t, y)
            loss, accuracy = float(loss), float(accuracy)
            if progress["step"] > 0:  # the first step includes tracing the graph
                timed_steps += 1
                timed_seconds += time.perf_counter() - begin
            progress["train"].append({"step": progress["step"] + 1, "loss": loss,
                                      "fractionOfCorrectNextStepPreds": accuracy})
            report(step=progress["step"] + 1,
                   stepsPerSecond=timed_steps / timed_seconds if timed_seconds else None)
        epoch_seconds.append(time.perf_counter() - epoch_start)
        if (scores := evaluate()) is not None:
            progress["eval"].append({"step": progress["step"], **scores})
        report(epoch=epoch + 1, epochSeconds=epoch_seconds)
    meta = {"rank": spec["rank"], "alpha": lora.ALPHA, "adapted": list(lora.ADAPTED),
            "baseModel": spec["base_model"], "localModel": "gemma-3-270m"}
    digest = lora.save(folder, model.arrays(), meta)
    report(sha256=digest, seconds=time.perf_counter() - started)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
