"""Pipelines the tests compile: plain KFP v2 code as a learner writes it."""


from google_cloud_pipeline_components.types.artifact_types import UnmanagedContainerModel
from google_cloud_pipeline_components.v1.automl.training_job import AutoMLTabularTrainingJobRunOp
from google_cloud_pipeline_components.v1.batch_predict_job import ModelBatchPredictOp
from google_cloud_pipeline_components.v1.bigquery import BigqueryQueryJobOp
from google_cloud_pipeline_components.v1.custom_job import CustomTrainingJobOp
from google_cloud_pipeline_components.v1.dataset import TabularDatasetCreateOp
from google_cloud_pipeline_components.v1.endpoint import EndpointCreateOp, ModelDeployOp
from google_cloud_pipeline_components.v1.model import ModelUploadOp
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

BASE = "python:3.11"


@dsl.component(base_image=BASE)
def make(n: int, data: Output[Dataset]) -> int:
    with open(data.path, "w") as f:
        f.write("x" * n)
    return n * 2


@dsl.component(base_image=BASE)
def measure(data: Input[Dataset], metrics: Output[Metrics]) -> float:
    with open(data.path) as f:
        size = len(f.read())
    metrics.log_metric("size", size)
    return size / 10


@dsl.component(base_image=BASE)
def say(msg: str) -> str:
    print(msg)
    return msg


@dsl.component(base_image=BASE)
def explode(reason: str):
    raise ValueError(f"boom: {reason}")


@dsl.pipeline(name="inner")
def inner(x: int) -> int:
    return make(n=x).outputs["Output"]


@dsl.pipeline(name="control-flow")
def control_flow(n: int = 3):
    bye = say(msg="bye")
    with dsl.ExitHandler(bye):
        made = make(n=n)
        measured = measure(data=made.outputs["data"])
        with dsl.If(measured.outputs["Output"] > 0.2, name="big"):
            say(msg="big")
        with dsl.Else(name="small"):
            say(msg="small")
        with dsl.ParallelFor([1, 2, 4]) as item:
            make(n=item)
        inner(x=made.outputs["Output"])


@dsl.pipeline(name="failing")
def failing(reason: str = "bad data"):
    bye = say(msg="cleanup")
    with dsl.ExitHandler(bye):
        first = say(msg="before")
        explode(reason=reason).after(first)


@dsl.component(base_image=BASE, packages_to_install=["scikit-learn"])
def train(model: Output[UnmanagedContainerModel]):
    import os

    import joblib
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    os.makedirs(model.path, exist_ok=True)
    joblib.dump(fitted, os.path.join(model.path, "model.joblib"))
    model.metadata["containerSpec"] = {
        "imageUri": "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"}


@dsl.pipeline(name="google-components")
def google_components(project: str, source: str, destination: str,
                      location: str = "us-central1"):
    BigqueryQueryJobOp(
        project=project, location="US",
        query="SELECT species, COUNT(*) AS n FROM `bigquery-public-data.ml_datasets.penguins` "
              "GROUP BY species")
    trained = train()
    uploaded = ModelUploadOp(project=project, location=location, display_name="test-gcpc-model",
                             unmanaged_container_model=trained.outputs["model"])
    endpoint = EndpointCreateOp(project=project, location=location,
                                display_name="test-gcpc-endpoint")
    ModelDeployOp(endpoint=endpoint.outputs["endpoint"], model=uploaded.outputs["model"],
                  dedicated_resources_machine_type="n1-standard-2",
                  dedicated_resources_min_replica_count=1,
                  dedicated_resources_max_replica_count=1)
    ModelBatchPredictOp(project=project, location=location, job_display_name="test-gcpc-batch",
                        model=uploaded.outputs["model"], gcs_source_uris=[source],
                        instances_format="jsonl",
                        gcs_destination_output_uri_prefix=destination)


@dsl.pipeline(name="custom-training")
def custom_training(project: str, package: str, output: str):
    CustomTrainingJobOp(
        project=project, location="us-central1", display_name="test-pipeline-training",
        base_output_directory=output,
        worker_pool_specs=[{
            "machine_spec": {"machine_type": "n1-standard-4"}, "replica_count": 1,
            "python_package_spec": {
                "executor_image_uri":
                    "us-docker.pkg.dev/vertex-ai/training/sklearn-cpu.1-6:latest",
                "package_uris": [package], "python_module": "trainer.task"}}])


@dsl.component(base_image=BASE)
def nap(seconds: float):
    import time

    time.sleep(seconds)


@dsl.pipeline(name="slow")
def slow(seconds: float = 60.0):
    nap(seconds=seconds)


@dsl.pipeline(name="automl-tabular")
def automl_tabular(project: str, table: str, target: str, location: str = "us-central1"):
    """The dataset and AutoML ops run by GCPC's remote_runner launcher (Google's own code)."""
    dataset = TabularDatasetCreateOp(display_name="test-gcpc-census", bq_source=table,
                                     location=location)
    AutoMLTabularTrainingJobRunOp(
        project=project, location=location, display_name="test-gcpc-automl",
        optimization_prediction_type="classification", dataset=dataset.outputs["dataset"],
        target_column=target, budget_milli_node_hours=1000,
        model_display_name="test-gcpc-automl-model")


@dsl.pipeline(name="scored")
def scored(n: int = 3) -> Metrics:
    """A pipeline whose output is a Metrics artifact: the metric.* columns of get_pipeline_df."""
    return measure(data=make(n=n).outputs["data"]).outputs["metrics"]


@dsl.component(base_image=BASE, packages_to_install=["scikit-learn==0.20.4", "pandas"])
def old_sklearn() -> str:
    import sklearn

    return sklearn.__version__


@dsl.pipeline(name="pinned")
def pinned():
    """A component pinning a scikit-learn this environment does not have."""
    old_sklearn()
