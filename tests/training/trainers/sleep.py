"""A trainer that runs until cancelled; writes its pid so the test can see it stop."""

import os
import time

pid_file = os.environ["AIP_MODEL_DIR"].replace("gs://", "/gcs/", 1) + "pid"
os.makedirs(os.path.dirname(pid_file), exist_ok=True)
with open(pid_file, "w") as f:
    f.write(str(os.getpid()))
time.sleep(120)
