"""Supervised tuning of the local Gemma (Vertex AI tuningJobs): `datasets` validates the
JSONL, `lora` is the TensorFlow LoRA model and the adapters' storage and merge, `trainer`
the child process that trains, `jobs` the tuningJobs engine, `tuned` the merged models that
answer, `routes` the wire."""
