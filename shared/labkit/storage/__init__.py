"""The local Cloud Storage: the JSON API on the shared local server, objects as files.

`local_path("gs://bucket/name")` gives the file behind an object, for engines that read
or write objects directly; `mount_path` gives Vertex's /gcs/BUCKET/... form where this
machine allows creating /gcs.
"""

from labkit.storage.mount import mount_path
from labkit.storage.paths import local_path, matching_files, split_uri

__all__ = ["local_path", "matching_files", "mount_path", "split_uri"]
