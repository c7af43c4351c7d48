"""The local Dataflow: the jobs Beam's DataflowRunner submits, run with Beam's own portable
runner (the FnApiRunner) in a child process per job.

service.py (gRPC google.dataflow.v1beta3, behind the proxy) -> jobs.py (the jobs, their
states, messages and metrics, kept as JSON in the workspace) -> worker.py (the child
process: the staged pipeline proto from Cloud Storage, run on this machine).
"""
