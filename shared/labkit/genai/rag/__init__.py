"""Vertex AI RAG Engine on the local services: corpora (RagManagedDb, the local embedding
model), files imported from Cloud Storage (parsing.py, chunking.py), retrieval
(corpora.py over labkit.vectors), the REST routes (routes.py, registered by genai/routes.py
on the same Engine) and grounding generateContent on retrieved chunks (grounding.py)."""
