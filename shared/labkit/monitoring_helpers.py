"""Model monitoring helpers for labs: the same cell works on the local backend and on Vertex AI.

    from labkit import monitoring_helpers as mh
    mh.wait_for_analysis(job)          # next monitoring run, then the refreshed job
    mh.stats_anomalies(job, deployed_model_id)   # distances and thresholds as a DataFrame

On Vertex AI a monitoring job analyses its endpoint's logged traffic every monitor interval
(at least an hour), so waiting is all a learner can do. Locally, where nobody wants to wait
an hour, wait_for_analysis asks the local services to run the analysis now
(POST /labkit/vertex/monitoring/JOB_ID:analyze on the local endpoint). Either way it returns
when a run newer than the call has finished.
"""

from __future__ import annotations

import json
import time
import urllib.request

OBJECTIVES = ("RAW_FEATURE_SKEW", "RAW_FEATURE_DRIFT")


def _local_env():
    from labkit import env

    return env._started.get("local")


def _last_run(job) -> float:
    job._sync_gca_resource()
    run = job.gca_resource.latest_monitoring_pipeline_metadata.run_time
    return run.timestamp() if run else 0.0


def wait_for_analysis(job, timeout_s: float = 2 * 3600, poll_s: float = 60):
    """Waits for the job's next monitoring run and returns the job, refreshed."""
    started = time.time()
    local = _local_env()
    if local is not None:
        from labkit.workspace import Workspace

        request = urllib.request.Request(
            f"{local.endpoint}/labkit/vertex/monitoring/{job.name}:analyze", data=b"{}",
            method="POST", headers={"Authorization": f"Bearer {Workspace.from_env().token}",
                                    "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=600) as response:
            json.load(response)
    while _last_run(job) < started:
        if time.time() - started > timeout_s:
            raise TimeoutError(f"No monitoring run of {job.resource_name} within {timeout_s} s; "
                               f"monitoring runs once per monitor interval.")
        time.sleep(poll_s)
    return job


def stats_anomalies(job, deployed_model_id: str, objectives=OBJECTIVES):
    """Every feature's distance and threshold per monitoring run, newest first, from the
    searchModelDeploymentMonitoringStatsAnomalies API (the call the console makes)."""
    import pandas as pd
    from google.cloud.aiplatform_v1.types import (
        ModelDeploymentMonitoringObjectiveType,
        SearchModelDeploymentMonitoringStatsAnomaliesRequest,
    )

    request = SearchModelDeploymentMonitoringStatsAnomaliesRequest(
        model_deployment_monitoring_job=job.resource_name,
        deployed_model_id=deployed_model_id,
        objectives=[{"type_": ModelDeploymentMonitoringObjectiveType[o]} for o in objectives])
    rows = []
    for stats in job.api_client.search_model_deployment_monitoring_stats_anomalies(
            request=request):
        for feature in stats.feature_stats:
            for run in feature.prediction_stats:
                rows.append({
                    "objective": stats.objective.name, "feature": feature.feature_display_name,
                    "distance": run.distribution_deviation,
                    "threshold": run.anomaly_detection_threshold,
                    "anomaly": run.distribution_deviation > run.anomaly_detection_threshold,
                    "window_start": run.start_time, "window_end": run.end_time})
    columns = ["objective", "feature", "distance", "threshold", "anomaly", "window_start",
               "window_end"]
    return pd.DataFrame(rows, columns=columns)


def plot_feature(training, serving: dict, feature: str, ax=None):
    """The training distribution of one feature against serving windows.

    training: a Series; serving: {label: Series}. Numbers as overlaid density histograms,
    categories as side-by-side shares of the most common categories."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    ax = ax or plt.subplots(figsize=(5, 3.2))[1]
    samples = {"training": pd.Series(training).dropna(), **{k: pd.Series(v).dropna()
                                                             for k, v in serving.items()}}
    if all(pd.api.types.is_numeric_dtype(s) for s in samples.values()):
        values = np.concatenate([s.to_numpy(float) for s in samples.values()])
        edges = np.histogram_bin_edges(values, bins=30)
        for name, sample in samples.items():
            ax.hist(sample.astype(float), bins=edges, density=True, alpha=0.45, label=name)
    else:
        top = samples["training"].value_counts().index[:8].tolist()
        extra = [c for s in samples.values() for c in s.value_counts().index[:3]
                 if c not in top]
        categories = top + list(dict.fromkeys(extra))
        width = 0.8 / len(samples)
        x = np.arange(len(categories))
        for k, (name, sample) in enumerate(samples.items()):
            shares = sample.value_counts(normalize=True).reindex(categories, fill_value=0)
            ax.bar(x + k * width, shares, width, label=name)
        ax.set_xticks(x + width * (len(samples) - 1) / 2, categories, rotation=35, ha="right")
    ax.set_title(feature)
    ax.legend(fontsize=8)
    return ax
