"""A pipeline that uploads a model with the image it is given (tests/vertex/test_containers.py).
No `from __future__ import annotations` here: KFP reads the parameter types at runtime."""

from google_cloud_pipeline_components.types import artifact_types
from google_cloud_pipeline_components.v1.model import ModelUploadOp
from kfp import compiler, dsl


def compile_upload(path: str, artifact_uri: str, image: str) -> None:
    @dsl.pipeline(name="prebuilt-upload")
    def pipeline(project: str, location: str):
        unmanaged = dsl.importer(artifact_uri=artifact_uri,
                                 artifact_class=artifact_types.UnmanagedContainerModel,
                                 metadata={"containerSpec": {"imageUri": image}})
        ModelUploadOp(project=project, location=location, display_name="prebuilt-upload",
                      unmanaged_container_model=unmanaged.outputs["artifact"])

    compiler.Compiler().compile(pipeline, path)
