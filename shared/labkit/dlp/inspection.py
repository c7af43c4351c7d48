"""inspect_content: findings of built-in and custom infoTypes in text and tables, with DLP's
likelihood threshold, limits, quotes and locations.

Messages are google-cloud-dlp's own types (dlp_v2.InspectConfig, ContentItem, Finding): the
wire format and the domain are the same here. Reference: the InspectConfig, Finding and
Location messages in google/privacy/dlp/v2/dlp.proto and
https://cloud.google.com/sensitive-data-protection/docs/reference/rpc/google.privacy.dlp.v2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from labkit.dlp import detectors
from labkit.services.http import gcp_only_message

# https://cloud.google.com/sensitive-data-protection/limits
MAX_REQUEST_BYTES = 524288  # "Default request size limit: 0.5 MB"
MAX_TABLE_VALUES = 50000  # "Maximum number of table values"
MAX_FINDINGS = 3000  # "Maximum number of findings per request"
MAX_DICTIONARIES = 10  # "Maximum number of regular custom dictionaries per request"
MAX_QUOTE_BYTES = 4096  # "Maximum size of each quote"


class DlpError(Exception):
    """A refusal: `code` is the gRPC status name (INVALID_ARGUMENT, NOT_FOUND, ...)."""

    def __init__(self, message: str, code: str = "INVALID_ARGUMENT"):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Match:
    info_type: str
    likelihood: int
    start: int  # code points, in the value it was found in
    end: int
    row: int | None = None  # tables: the row index and the column name
    column: str | None = None


def _custom_detector(custom) -> tuple[str, callable]:
    from google.cloud import dlp_v2

    name = custom.info_type.name
    if not name:
        raise DlpError("Custom info type name must be set.")
    if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", name):
        raise DlpError(f'Invalid info type name "{name}": the name must match '
                       f"[A-Za-z0-9_]{{1,64}}.")
    likelihood = custom.likelihood or dlp_v2.Likelihood.VERY_LIKELY  # the documented default
    kind = dlp_v2.CustomInfoType.pb(custom).WhichOneof("type")
    if kind == "regex":
        try:
            pattern = re.compile(custom.regex.pattern)
        except re.error as e:
            raise DlpError(f'Invalid regular expression "{custom.regex.pattern}" for custom '
                           f"info type {name}: {e}.") from None
        groups = list(custom.regex.group_indexes)
        if any(g > pattern.groups for g in groups):
            raise DlpError(f"Group index out of range for custom info type {name}.")

        def find(text):
            for m in pattern.finditer(text):
                for g in groups or [0]:
                    if m.start(g) >= 0 and m.end(g) > m.start(g):
                        yield m.start(g), m.end(g), int(likelihood)
        return name, find
    if kind == "dictionary":
        if custom.dictionary.cloud_storage_path.path:
            raise DlpError("Dictionaries from Cloud Storage are not available on the local "
                           "Sensitive Data Protection; it runs with LAB_BACKEND=gcp.",
                           "UNIMPLEMENTED")
        words = [w for w in custom.dictionary.word_list.words if w.strip()]
        if not words:
            raise DlpError(f"Dictionary for custom info type {name} must contain at least "
                           f"one word.")
        # Matching is case-insensitive and on word boundaries (the dictionary detector docs).
        alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        pattern = re.compile(rf"(?i)(?<!\w)(?:{alternatives})(?!\w)")

        def find(text):
            for m in pattern.finditer(text):
                yield m.start(), m.end(), int(likelihood)
        return name, find
    if kind == "surrogate_type":
        pattern = re.compile(rf"{re.escape(name)}\((\d+)\):")

        def find(text):
            for m in pattern.finditer(text):
                end = m.end() + int(m.group(1))
                if end <= len(text):
                    yield m.start(), end, int(likelihood)
        return name, find
    if kind == "stored_type":
        raise DlpError("Stored infoTypes are not available on the local Sensitive Data "
                       "Protection; it runs with LAB_BACKEND=gcp.", "UNIMPLEMENTED")
    raise DlpError(f"Custom info type {name} must have a regex, dictionary, surrogate_type "
                   f"or stored_type.")


def detectors_for(config) -> dict:
    """infoType name -> detector, for an InspectConfig (no infoTypes: every built-in one,
    as DLP inspects with its default set)."""
    chosen = {}
    customs = list(config.custom_info_types) if config else []
    if sum(1 for c in customs if "dictionary" in c) > MAX_DICTIONARIES:
        raise DlpError(f"Too many dictionaries: at most {MAX_DICTIONARIES} regular custom "
                       f"dictionaries per request.")
    if config and config.rule_set:
        raise DlpError(gcp_only_message("InspectConfig.rule_set (hotword and exclusion rules)",
                                        "Sensitive Data Protection"), "UNIMPLEMENTED")
    for custom in customs:
        if custom.detection_rules:
            raise DlpError(gcp_only_message("CustomInfoType.detection_rules",
                                            "Sensitive Data Protection"), "UNIMPLEMENTED")
        name, find = _custom_detector(custom)
        chosen[name] = find
    for info_type in (config.info_types if config else []):
        if info_type.name in chosen:
            continue
        if info_type.name not in detectors.BUILT_IN:
            raise DlpError(f'Invalid built-in info type name "{info_type.name}".')
        chosen[info_type.name] = detectors.BUILT_IN[info_type.name]
    if not (config and config.info_types):
        for name, find in detectors.BUILT_IN.items():
            chosen.setdefault(name, find)
    return chosen


def _thresholds(config) -> tuple[int, dict[str, int]]:
    default = int(config.min_likelihood) if config and config.min_likelihood else \
        detectors.POSSIBLE  # "Only returns findings equal to or above this threshold.
    # The default is POSSIBLE."
    per_type = {}
    for entry in (config.min_likelihood_per_info_type if config else []):
        per_type[entry.info_type.name] = int(entry.min_likelihood) or default
    return default, per_type


def find(config, values, limited: bool = True) -> tuple[list[Match], bool]:
    """Matches in `values` [(text, row, column)], ordered by place, after the likelihood
    threshold and (unless not `limited`: a job limits all its findings at once) the limits;
    and whether the limits cut findings off."""
    chosen = detectors_for(config)
    default, per_type = _thresholds(config)
    # "If set to EXCLUSION_TYPE_EXCLUDE this infoType will not cause a finding to be
    # returned" (CustomInfoType.exclusion_type)
    for custom in (config.custom_info_types if config else []):
        if custom.exclusion_type == 1:
            chosen.pop(custom.info_type.name, None)
    excluded = set()
    matches = []
    for text, row, column in values:
        for name, detect in chosen.items():
            floor = per_type.get(name, default)
            for start, end, likelihood in detect(text):
                if likelihood >= floor and (name, row, column, start, end) not in excluded:
                    excluded.add((name, row, column, start, end))
                    matches.append(Match(name, likelihood, start, end, row, column))
    matches.sort(key=lambda m: (m.row or 0, m.column or "", m.start, -m.end, m.info_type))
    return limit(config, matches) if limited else (matches, False)


def limit(config, matches: list[Match], cap: int | None = MAX_FINDINGS
          ) -> tuple[list[Match], bool]:
    """The findings the limits keep (`cap`: 3,000 for content requests, none for jobs)."""
    limits = config.limits if config else None
    if limits is None:
        kept = matches[:cap] if cap else matches
        return kept, len(kept) < len(matches)
    for limit in limits.max_findings_per_info_type:
        if limit.max_findings < 0:
            raise DlpError("max_findings must be non-negative.")
    if limits.max_findings_per_request < 0 or limits.max_findings_per_item < 0:
        raise DlpError("Finding limits must be non-negative.")
    # "If you set this field in an InspectContentRequest, the resulting maximum value is the
    # value that you set or 3,000, whichever is lower." (FindingLimits)
    total = limits.max_findings_per_request or cap or len(matches)
    total = min(total, cap) if cap else total
    per_item = limits.max_findings_per_item or total
    caps = {limit.info_type.name: limit.max_findings
            for limit in limits.max_findings_per_info_type}
    default_cap = caps.pop("", None)  # an InfoTypeLimit without infoType applies to all others
    kept, counts, truncated = [], {}, False
    for match in matches:
        cap = caps.get(match.info_type, default_cap)
        if cap and counts.get(match.info_type, 0) >= cap:
            truncated = True
            continue
        if len(kept) >= min(total, per_item):
            truncated = True
            break
        counts[match.info_type] = counts.get(match.info_type, 0) + 1
        kept.append(match)
    return kept, truncated


def value_text(value) -> str:
    """A table cell's text as DLP inspects it."""
    from google.cloud import dlp_v2

    kind = dlp_v2.Value.pb(value).WhichOneof("type")
    if kind is None:
        return ""
    if kind == "date_value":
        d = value.date_value
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
    if kind == "boolean_value":
        return "true" if value.boolean_value else "false"
    if kind == "timestamp_value":
        return value.timestamp_value.isoformat()
    return str(getattr(value, kind))


def check_item(item) -> None:
    from google.cloud import dlp_v2

    size = dlp_v2.ContentItem.pb(item).ByteSize()
    if size > MAX_REQUEST_BYTES:
        raise DlpError(f"Content exceeds the request size limit: {size} bytes, limit "
                       f"{MAX_REQUEST_BYTES} bytes (0.5 MB). Inspect larger data with a DLP job "
                       f"over Cloud Storage or BigQuery.")
    if "table" in item:
        cells = sum(len(row.values) for row in item.table.rows)
        if cells > MAX_TABLE_VALUES:
            raise DlpError(f"Table has {cells} values; the limit is {MAX_TABLE_VALUES} "
                           f"values per request.")
        width = len(item.table.headers)
        for i, row in enumerate(item.table.rows):
            if len(row.values) != width:
                raise DlpError(f"Table row {i} has {len(row.values)} values but the table has "
                               f"{width} headers.")
    if "byte_item" in item and item.byte_item.type_ not in (0, 5, 6):  # unspecified, text
        raise DlpError("Only text byte items (TEXT_UTF8) are inspected by the local Sensitive "
                       "Data Protection; images and documents run with LAB_BACKEND=gcp.",
                       "UNIMPLEMENTED")


def item_values(item) -> list[tuple[str, int | None, str | None]]:
    if "table" in item:
        headers = [h.name for h in item.table.headers]
        return [(value_text(v), r, headers[c]) for r, row in enumerate(item.table.rows)
                for c, v in enumerate(row.values)]
    if "byte_item" in item:
        return [(item.byte_item.data.decode("utf-8", "replace"), None, None)]
    return [(item.value, None, None)]


def to_findings(matches: list[Match], values, include_quote: bool, now,
                exclude_info_types: bool = False) -> list:
    """dlp_v2.Finding messages (built as raw protobuf messages: proto-plus construction costs
    a millisecond a finding, and a request may have 3,000)."""
    from google.cloud import dlp_v2

    texts = {(row, column): text for text, row, column in values}
    finding_pb = dlp_v2.Finding.pb()
    findings = []
    for m in matches:
        text = texts[(m.row, m.column)]
        start_byte = len(text[:m.start].encode())
        end_byte = start_byte + len(text[m.start:m.end].encode())
        finding = finding_pb(likelihood=m.likelihood)
        if not exclude_info_types:
            finding.info_type.name = m.info_type
        location = finding.location
        location.byte_range.start, location.byte_range.end = start_byte, end_byte
        location.codepoint_range.start, location.codepoint_range.end = m.start, m.end
        if m.column is not None:
            record = location.content_locations.add().record_location
            record.field_id.name = m.column
            record.table_location.row_index = m.row
        if now is not None:
            finding.create_time.FromDatetime(now)
        if include_quote:
            finding.quote = text[m.start:m.end].encode()[:MAX_QUOTE_BYTES].decode(
                "utf-8", "ignore")
        findings.append(finding)
    return findings


def inspect(config, item, now):
    """An InspectResult for a ContentItem."""
    from google.cloud import dlp_v2

    check_item(item)
    values = item_values(item)
    matches, truncated = find(config, values)
    result = dlp_v2.InspectResult.pb()(findings_truncated=truncated)
    result.findings.extend(to_findings(matches, values, bool(config and config.include_quote),
                                       now, bool(config and config.exclude_info_types)))
    return dlp_v2.InspectResult.wrap(result)
