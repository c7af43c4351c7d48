"""The local Sensitive Data Protection (Cloud DLP): detectors and transforms (engine), DLP jobs
over BigQuery tables (jobs), and the gRPC service the real dlp_v2 client reaches (service)."""
