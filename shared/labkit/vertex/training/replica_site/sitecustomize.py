"""Loaded by Python at start-up in a training replica (this folder is on its PYTHONPATH).

On Vertex the SDK in a training container reaches Vertex AI with the job's service
account. Here, the first `import google.cloud.aiplatform` (or vertexai, which imports it)
in the replica is followed by labkit.start("local"), the call that points a notebook's SDK
and a pipeline task's (labkit.vertex.pipelines.launch) at the local services: the
trainer's own `aiplatform.init(...)` then keeps the local endpoint, transport and
credentials. A replica that never imports the SDK pays nothing.
"""

import sys


class _PointSdkLocally:
    """A meta path finder that watches for one module and steps aside once it is found."""

    def find_spec(self, name, path=None, target=None):
        if name != "google.cloud.aiplatform":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                break
        else:
            return None
        exec_module = spec.loader.exec_module

        def exec_then_point(module):
            exec_module(module)
            try:
                import labkit

                labkit.start("local")
            except Exception as exc:  # noqa: BLE001 - the trainer runs on; say why loudly
                print(f"labkit: the Vertex AI SDK in this job could not be pointed at the "
                      f"local services: {type(exc).__name__}: {exc}", file=sys.stderr)

        spec.loader.exec_module = exec_then_point
        return spec


sys.meta_path.insert(0, _PointSdkLocally())
