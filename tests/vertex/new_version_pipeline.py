"""A pipeline that registers a new version of an existing model and deploys it with all the
traffic, naming the model and endpoint by pipeline parameters (lab 04's champion branch).
No `from __future__ import annotations`: KFP reads the parameter types at runtime."""

from google_cloud_pipeline_components.types import artifact_types
from google_cloud_pipeline_components.v1.endpoint import ModelDeployOp
from google_cloud_pipeline_components.v1.model import ModelUploadOp
from kfp import compiler, dsl


def compile_new_version(path: str, image: str) -> None:
    @dsl.pipeline(name="new-version")
    def pipeline(project: str, location: str, artifact_uri: str, parent: str, endpoint: str):
        unmanaged = dsl.importer(artifact_uri=artifact_uri,
                                 artifact_class=artifact_types.UnmanagedContainerModel,
                                 metadata={"containerSpec": {"imageUri": image}})
        champion = dsl.importer(artifact_uri=parent, artifact_class=artifact_types.VertexModel,
                                metadata={"resourceName": parent})
        serving = dsl.importer(artifact_uri=endpoint,
                               artifact_class=artifact_types.VertexEndpoint,
                               metadata={"resourceName": endpoint})
        version = ModelUploadOp(project=project, location=location, display_name="versioned",
                                parent_model=champion.outputs["artifact"],
                                unmanaged_container_model=unmanaged.outputs["artifact"])
        ModelDeployOp(endpoint=serving.outputs["artifact"], model=version.outputs["model"],
                      dedicated_resources_machine_type="n1-standard-2",
                      dedicated_resources_min_replica_count=1,
                      dedicated_resources_max_replica_count=1, traffic_split={"0": 100})

    compiler.Compiler().compile(pipeline, path)
