"""Local Sensitive Data Protection: inspect_content throughput through the real dlp_v2 client
(gRPC, the proxy, TLS, the token check) against calling the same engine directly, on text
built from the labelled sample; de-identification of a table; and the detectors' precision
and recall on that sample (smoke mode: one repetition, smaller items)."""

from __future__ import annotations

import datetime
import statistics
import time


def _median_s(call, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(smoke: bool = False) -> list[dict]:
    from google.cloud import dlp_v2

    import labkit
    from labkit.dlp import deidentify, inspection
    from tests.dlp import labelled

    env = labkit.start()
    parent = f"projects/{env.project}/locations/global"
    client = dlp_v2.DlpServiceClient()
    repeat, copies = (1, 20) if smoke else (7, 400)
    text = " ".join(sentence for sentence, _ in labelled.SAMPLE) * copies
    text = text[:inspection.MAX_REQUEST_BYTES - 1024]
    kb = len(text.encode()) / 1024
    config = dlp_v2.InspectConfig(info_types=[{"name": n} for n in labelled.INFO_TYPES],
                                  include_quote=True)
    item = dlp_v2.ContentItem(value=text)
    now = datetime.datetime.now(datetime.UTC)
    client.inspect_content(request={"parent": parent, "item": item, "inspect_config": config})
    served = _median_s(lambda: client.inspect_content(request={
        "parent": parent, "item": item, "inspect_config": config}), repeat)
    direct = _median_s(lambda: inspection.inspect(config, item, now), repeat)
    findings = len(inspection.inspect(config, item, now).findings)
    rows = [{"name": f"inspect_content of {kb:.0f} KB text, 8 infoTypes ({findings} findings; "
                     f"throughput KB/s)", "value": round(kb / served, 1), "unit": "KB/s",
             "baseline": round(kb / direct, 1), "target": "ratio > 0.8"}]
    rows[-1]["ratio"] = round(rows[-1]["value"] / rows[-1]["baseline"], 3)
    short = dlp_v2.ContentItem(value=labelled.SAMPLE[0][0])
    small = _median_s(lambda: client.inspect_content(request={
        "parent": parent, "item": short, "inspect_config": config}), repeat * 5)
    small_direct = _median_s(lambda: inspection.inspect(config, short, now), repeat * 5)
    rows.append({"name": "inspect_content of one sentence (median ms per call)",
                 "value": round(small * 1000, 2), "unit": "ms",
                 "baseline": round(small_direct * 1000, 2), "target": "< 10 ms",
                 "ratio": round(small / small_direct, 1)})

    table_rows = 100 if smoke else 2000
    table = dlp_v2.Table(headers=[{"name": "email"}, {"name": "age"}], rows=[
        {"values": [{"string_value": f"user{i}@example.com"}, {"integer_value": i % 90}]}
        for i in range(table_rows)])
    de_config = dlp_v2.DeidentifyConfig(record_transformations={"field_transformations": [
        {"fields": [{"name": "email"}], "primitive_transformation": {"crypto_hash_config": {
            "crypto_key": {"unwrapped": {"key": bytes(32)}}}}},
        {"fields": [{"name": "age"}], "primitive_transformation": {
            "fixed_size_bucketing_config": {"lower_bound": {"integer_value": 10},
                                            "upper_bound": {"integer_value": 80},
                                            "bucket_size": 10}}}]})
    table_item = dlp_v2.ContentItem(table=table)
    served = _median_s(lambda: client.deidentify_content(request={
        "parent": parent, "item": table_item, "deidentify_config": de_config}), repeat)
    direct = _median_s(lambda: deidentify.run(de_config, None, table_item), repeat)
    rows.append({"name": f"deidentify_content of a {table_rows:,}-row table (hash + bucket; "
                         f"cells/s)", "value": round(2 * table_rows / served),
                 "unit": "cells/s", "baseline": round(2 * table_rows / direct),
                 "ratio": round(direct / served, 3), "target": "ratio > 0.8"})

    seen = [{(f.info_type.name, f.quote) for f in client.inspect_content(request={
        "parent": parent, "item": {"value": sentence}, "inspect_config": config}
    ).result.findings} for sentence, _ in labelled.SAMPLE]
    precision, recall = labelled.precision_recall(labelled.score(seen))
    rows.append({"name": f"detector precision on the labelled sample "
                         f"({len(labelled.SAMPLE)} sentences)", "value": round(precision, 3),
                 "unit": "", "target": "> 0.9"})
    rows.append({"name": "detector recall on the labelled sample", "value": round(recall, 3),
                 "unit": "", "target": "> 0.9"})
    return rows
