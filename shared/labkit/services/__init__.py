"""Local stand-ins of Google Cloud services, served over HTTP on 127.0.0.1."""
