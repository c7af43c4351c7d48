"""Custom training, distributed training and hyperparameter tuning on the local Vertex AI.

Rooms: `service` (REST routes), `custom_jobs` (CustomJob validation and lifecycle),
`tuning` (HyperparameterTuningJob trials) with `study` (parameter space, search
algorithms, median stopping), `pipelines` (TrainingPipeline: custom job + model upload;
AutoML pipelines are dispatched to labkit.vertex.automl), `datasets` (managed datasets
split and exported for AIP_TRAINING_DATA_URI and friends), `runner` (worker pools as local
processes), `contract` (the environment and program a replica gets), `machines` (training
machine and accelerator validation), `jobs` (state, long-polled GET, cancel, delete).

Store collections (ResourceStore, vertex/<collection>/<id>.json): "customJobs",
"hyperparameterTuningJobs", "trainingPipelines" (shared with the AutoML engine). Job
folders with logs: vertex/training/<job id>/logs/workerpoolN-I.log.

Cloud Storage for trainers: Vertex gives AIP_MODEL_DIR and friends as gs:// URIs, and
TensorFlow's own gs:// file system cannot reach the local Cloud Storage (it calls Google's
hostname). Trainers use Vertex's Cloud Storage FUSE form instead, /gcs/BUCKET/..., which
Vertex mounts in every custom training job: locally each bucket the job spec names
(package URIs, base output directory, args, env) is linked at /gcs/BUCKET -> its workspace
folder (labkit.storage.mount_path) before replicas start. /gcs is one per machine: with two
workspaces running jobs at once, a bucket name both use points at the last one linked.
A trainer that turns gs:// into /gcs/ therefore runs unchanged on Vertex AI and here.
Where /gcs cannot be created (no write access to /), the job log says so and how to fix it;
the Cloud Storage client library still reaches the local storage from the trainer.
"""
