"""deidentify_content and reidentify_content over text (info_type_transformations) and tables
(record_transformations with field_transformations), with DLP's TransformationOverview.

DeidentifyConfig semantics (google/privacy/dlp/v2/dlp.proto): an InfoTypeTransformation with
no infoTypes applies to every finding; a FieldTransformation transforms whole cells with a
primitive, or the findings inside its cells with info_type_transformations; the overview has
one TransformationSummary per infoType and transformation (text) or per field (tables), each
with SummaryResult counts (SUCCESS, or ERROR with details when transformation_error_handling
is leave_untransformed; the default, throw_error, fails the request).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labkit.dlp import inspection, transforms
from labkit.dlp.inspection import DlpError

_REVERSIBLE = ("crypto_deterministic_config",)


@dataclass
class _Tally:
    summary: object  # dlp_v2.TransformationSummary being filled
    success: int = 0
    errors: dict = field(default_factory=dict)  # details -> count
    transformed_bytes: int = 0


class _Run:
    def __init__(self, config, reverse: bool):
        from google.cloud import dlp_v2

        self.reverse = reverse
        self.keys = transforms.Keys()
        handling = config.transformation_error_handling if config else None
        self.leave_untransformed = handling is not None and "leave_untransformed" in handling
        self.tallies: dict[tuple, _Tally] = {}
        self.dlp = dlp_v2

    def tally(self, key: tuple, **summary) -> _Tally:
        if key not in self.tallies:
            self.tallies[key] = _Tally(self.dlp.TransformationSummary(**summary))
        return self.tallies[key]

    def transform(self, tally: _Tally, primitive, value, **how):
        try:
            out = transforms.apply(primitive, value, self.keys, reverse=self.reverse, **how)
        except DlpError as e:
            if not self.leave_untransformed or e.code == "UNIMPLEMENTED":
                raise
            tally.errors[e.message] = tally.errors.get(e.message, 0) + 1
            return value
        tally.success += 1
        tally.transformed_bytes += len(inspection.value_text(value).encode())
        return out

    def overview(self):
        codes = self.dlp.TransformationSummary.TransformationResultCode
        summaries = []
        for tally in self.tallies.values():
            s = tally.summary
            if tally.success:
                s.results.append(self.dlp.TransformationSummary.SummaryResult(
                    count=tally.success, code=codes.SUCCESS))
            for details, count in tally.errors.items():
                s.results.append(self.dlp.TransformationSummary.SummaryResult(
                    count=count, code=codes.ERROR, details=details))
            s.transformed_bytes = tally.transformed_bytes
            summaries.append(s)
        return self.dlp.TransformationOverview(
            transformed_bytes=sum(t.transformed_bytes for t in self.tallies.values()),
            transformation_summaries=summaries)


def _check_primitive(primitive, with_info_types: bool, reverse: bool) -> None:
    transforms.check(primitive, with_info_types)
    if reverse and transforms._kind(primitive) not in _REVERSIBLE:
        raise DlpError("Re-identification supports only reversible transformations: "
                       "CryptoDeterministicConfig (and CryptoReplaceFfxFpeConfig, which runs "
                       "with LAB_BACKEND=gcp).")


def _check_info_type_transformations(config, reverse: bool) -> None:
    if not config.transformations:
        raise DlpError("InfoTypeTransformations must contain at least one transformation.")
    for t in config.transformations:
        _check_primitive(t.primitive_transformation, True, reverse)


def _non_overlapping(matches):
    """The findings a text transformation replaces: earliest first, the longest (then the
    likeliest, then the more specific than DATE) where findings overlap."""
    chosen, end = [], -1
    for m in sorted(matches, key=lambda m: (m.start, -(m.end - m.start), -m.likelihood,
                                             m.info_type == "DATE")):
        if m.start >= end:
            chosen.append(m)
            end = m.end
    return chosen


def _transform_text(run: _Run, text: str, matches, info_type_transformations,
                    context: str | None = None, where: dict | None = None) -> str:
    from google.cloud import dlp_v2

    pieces, cursor = [], 0
    transformations = list(info_type_transformations.transformations)
    for m in _non_overlapping(matches):
        index = next((i for i, t in enumerate(transformations)
                      if not t.info_types or m.info_type in [n.name for n in t.info_types]),
                     None)
        if index is None:
            continue  # a finding no transformation names stays as it is
        t = transformations[index]
        key = (where["field"].name if where else None, m.info_type, index)
        tally = run.tally(key, info_type=dlp_v2.InfoType(name=m.info_type),
                          transformation=t.primitive_transformation, **(where or {}))
        found = dlp_v2.Value(string_value=text[m.start:m.end])
        out = run.transform(tally, t.primitive_transformation, found, info_type=m.info_type,
                            context=context)
        pieces += [text[cursor:m.start], inspection.value_text(out)]
        cursor = m.end
    return "".join(pieces) + text[cursor:]


def _matches_by_cell(inspect_config, values):
    matches, _ = inspection.find(inspect_config, values)
    by_cell = {}
    for m in matches:
        by_cell.setdefault((m.row, m.column), []).append(m)
    return by_cell


def run(deidentify_config, inspect_config, item, *, reverse: bool = False):
    """(transformed ContentItem, TransformationOverview)."""
    from google.cloud import dlp_v2

    if deidentify_config is None:
        raise DlpError("deidentify_config must be set (or name a deidentify template).")
    inspection.check_item(item)
    kind = dlp_v2.DeidentifyConfig.pb(deidentify_config).WhichOneof("transformation")
    state = _Run(deidentify_config, reverse)
    if kind == "info_type_transformations":
        _check_info_type_transformations(deidentify_config.info_type_transformations, reverse)
        values = inspection.item_values(item)
        by_cell = _matches_by_cell(inspect_config, values)
        if "table" not in item:
            text = values[0][0]
            out = _transform_text(state, text, by_cell.get((None, None), []),
                                  deidentify_config.info_type_transformations)
            return dlp_v2.ContentItem(value=out), state.overview()
        table = dlp_v2.Table(item.table)
        headers = [h.name for h in table.headers]
        for r, row in enumerate(table.rows):
            for c, value in enumerate(row.values):
                cell = by_cell.get((r, headers[c]))
                if cell:
                    row.values[c] = dlp_v2.Value(string_value=_transform_text(
                        state, inspection.value_text(value), cell,
                        deidentify_config.info_type_transformations))
        return dlp_v2.ContentItem(table=table), state.overview()
    if kind == "record_transformations":
        if "table" not in item:
            raise DlpError("RecordTransformations can only be applied to table items; use "
                           "InfoTypeTransformations for text.")
        return _records(state, deidentify_config.record_transformations, inspect_config,
                        item), state.overview()
    if kind == "image_transformations":
        raise DlpError("Image transformations are not available on the local Sensitive Data "
                       "Protection; they run with LAB_BACKEND=gcp.", "UNIMPLEMENTED")
    raise DlpError("DeidentifyConfig must set info_type_transformations or "
                   "record_transformations.")


def _records(state: _Run, config, inspect_config, item):
    from google.cloud import dlp_v2

    if config.record_suppressions:
        raise DlpError("Record suppressions are not available on the local Sensitive Data "
                       "Protection; they run with LAB_BACKEND=gcp.", "UNIMPLEMENTED")
    if not config.field_transformations:
        raise DlpError("RecordTransformations must contain at least one field transformation.")
    table = dlp_v2.Table(item.table)
    headers = [h.name for h in table.headers]
    for ft in config.field_transformations:
        if not ft.fields:
            raise DlpError("FieldTransformation must name at least one field.")
        if "condition" in ft:
            raise DlpError("FieldTransformation conditions are not available on the local "
                           "Sensitive Data Protection; they run with LAB_BACKEND=gcp.",
                           "UNIMPLEMENTED")
        kind = dlp_v2.FieldTransformation.pb(ft).WhichOneof("transformation")
        if kind == "primitive_transformation":
            _check_primitive(ft.primitive_transformation, False, state.reverse)
        elif kind == "info_type_transformations":
            _check_info_type_transformations(ft.info_type_transformations, state.reverse)
        else:
            raise DlpError("FieldTransformation must set primitive_transformation or "
                           "info_type_transformations.")
    for index, ft in enumerate(config.field_transformations):
        kind = dlp_v2.FieldTransformation.pb(ft).WhichOneof("transformation")
        for fid in ft.fields:
            where = {"field": dlp_v2.FieldId(name=fid.name), "field_transformations": [ft]}
            if fid.name not in headers:
                continue  # a field the table lacks is not transformed (no summary either)
            c = headers.index(fid.name)
            if kind == "info_type_transformations":
                values = [(inspection.value_text(row.values[c]), r, fid.name)
                          for r, row in enumerate(table.rows)]
                by_cell = _matches_by_cell(inspect_config, values)
                for r, row in enumerate(table.rows):
                    if (r, fid.name) in by_cell:
                        row.values[c] = dlp_v2.Value(string_value=_transform_text(
                            state, values[r][0], by_cell[(r, fid.name)],
                            ft.info_type_transformations, where=where))
                continue
            primitive = ft.primitive_transformation
            context_field = _context_field(primitive)
            tally = state.tally((fid.name, "primitive", index), transformation=primitive,
                                **where)
            for row in table.rows:
                context = None
                if context_field and context_field in headers:
                    context = inspection.value_text(row.values[headers.index(context_field)])
                if not inspection.value_text(row.values[c]):
                    continue  # empty cells are left as they are
                row.values[c] = state.transform(tally, primitive, row.values[c],
                                                context=context)
    return dlp_v2.ContentItem(table=table)


def _context_field(primitive) -> str | None:
    kind = transforms._kind(primitive)
    if kind == "crypto_deterministic_config":
        return primitive.crypto_deterministic_config.context.name or None
    if kind == "date_shift_config":
        return primitive.date_shift_config.context.name or None
    return None
