"""Two replicas, one model: MultiWorkerMirroredStrategy with a custom training loop.

Keras 3 model.fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), so the
loop is written with strategy.run. Every replica writes its final weights; they are
identical only if the gradients were all-reduced across the two processes.
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

GLOBAL_BATCH = 32
strategy = tf.distribute.MultiWorkerMirroredStrategy()
task = json.loads(os.environ["TF_CONFIG"])["task"]

rng = np.random.default_rng(task["index"] + (task["type"] == "worker") * 7)  # different data
x = rng.normal(size=(512, 4)).astype("float32")
y = (x @ np.array([1.0, -2.0, 3.0, 0.5], dtype="float32"))[:, None]
per_replica_batch = GLOBAL_BATCH // strategy.num_replicas_in_sync
dataset = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(per_replica_batch)

with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    optimizer = keras.optimizers.SGD(0.05)


@tf.function
def train_step(features, labels):
    def replica_step(xb, yb):
        with tf.GradientTape() as tape:
            per_example = tf.reduce_mean(tf.square(model(xb, training=True) - yb), axis=-1)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=GLOBAL_BATCH)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    losses = strategy.run(replica_step, args=(features, labels))
    return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)


batches = iter(dataset)
losses = [float(train_step(*next(batches))) for _ in range(40)]
out = os.environ["AIP_MODEL_DIR"].replace("gs://", "/gcs/", 1).rstrip("/") + "-replicas"
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, f"{task['type']}-{task['index']}.json"), "w") as f:
    json.dump({"replicas": strategy.num_replicas_in_sync, "first_loss": losses[0],
               "last_loss": losses[-1], "tf_config": json.loads(os.environ["TF_CONFIG"]),
               "weights": [w.tolist() for w in model.get_weights()]}, f)
