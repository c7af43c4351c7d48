"""deidentify_content and reidentify_content through the real dlp_v2 client: each primitive
transformation on text and on tables, the TransformationOverview, and DLP's refusals."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac

import pytest
from google.api_core import exceptions
from google.cloud import dlp_v2

KEY = bytes(range(32))
CODES = dlp_v2.TransformationSummary.TransformationResultCode


def on_text(dlp, parent, text, primitive, info_types=("EMAIL_ADDRESS",), **extra):
    response = dlp.deidentify_content(request={
        "parent": parent, "item": {"value": text},
        "inspect_config": {"info_types": [{"name": n} for n in info_types],
                           **extra.pop("inspect", {})},
        "deidentify_config": {"info_type_transformations": {"transformations": [
            {"primitive_transformation": primitive, **extra}]}}})
    return response


def people():
    return {"headers": [{"name": "id"}, {"name": "email"}, {"name": "age"},
                        {"name": "visit"}],
            "rows": [{"values": [{"string_value": "p1"}, {"string_value": "ada@example.com"},
                                 {"integer_value": 36},
                                 {"date_value": {"year": 2024, "month": 3, "day": 1}}]},
                     {"values": [{"string_value": "p2"}, {"string_value": "bob@example.org"},
                                 {"integer_value": 7},
                                 {"date_value": {"year": 2024, "month": 3, "day": 2}}]},
                     {"values": [{"string_value": "p1"}, {"string_value": "ada@example.com"},
                                 {"integer_value": 95},
                                 {"date_value": {"year": 2024, "month": 5, "day": 9}}]}]}


def on_table(dlp, parent, fields, primitive, table=None, **request):
    return dlp.deidentify_content(request={
        "parent": parent, "item": {"table": table or people()},
        "deidentify_config": {"record_transformations": {"field_transformations": [
            {"fields": [{"name": f} for f in fields], "primitive_transformation": primitive}]}},
        **request})


def column(response, name):
    headers = [h.name for h in response.item.table.headers]
    return [row.values[headers.index(name)] for row in response.item.table.rows]


def test_replace_and_replace_with_info_type(dlp, parent):
    text = "mail jen@example.com or 10.0.0.1"
    r = on_text(dlp, parent, text, {"replace_config": {"new_value": {"string_value": "[x]"}}})
    assert r.item.value == "mail [x] or 10.0.0.1"
    r = on_text(dlp, parent, text, {"replace_with_info_type_config": {}},
                info_types=("EMAIL_ADDRESS", "IP_ADDRESS"))
    assert r.item.value == "mail [EMAIL_ADDRESS] or [IP_ADDRESS]"
    summaries = {s.info_type.name: s for s in r.overview.transformation_summaries}
    assert set(summaries) == {"EMAIL_ADDRESS", "IP_ADDRESS"}
    email = summaries["EMAIL_ADDRESS"]
    assert [(x.count, x.code) for x in email.results] == [(1, CODES.SUCCESS)]
    assert email.transformed_bytes == len("jen@example.com")
    assert "replace_with_info_type_config" in email.transformation
    assert r.overview.transformed_bytes == len("jen@example.com") + len("10.0.0.1")


def test_character_masking(dlp, parent):
    card = "4111-1111-1111-1111"
    text = f"card {card}"
    ignore_dashes = [{"characters_to_skip": "-"}]

    def masked(**config):
        return on_text(dlp, parent, text, {"character_mask_config": config},
                       info_types=("CREDIT_CARD_NUMBER",)).item.value

    assert masked() == "card " + "*" * len(card)
    assert masked(masking_character="#", number_to_mask=-4, characters_to_ignore=ignore_dashes) \
        == "card ####-####-####-1111"
    assert masked(number_to_mask=-4, reverse_order=True, characters_to_ignore=ignore_dashes) \
        == "card 4111-****-****-****"
    assert masked(number_to_mask=5, characters_to_ignore=[
        {"common_characters_to_ignore": "PUNCTUATION"}]) == "card ****-*111-1111-1111"
    with pytest.raises(exceptions.InvalidArgument, match="single character"):
        masked(masking_character="##")


def test_crypto_hash_is_hmac_sha256_base64(dlp, parent):
    r = on_text(dlp, parent, "jen@example.com",
                {"crypto_hash_config": {"crypto_key": {"unwrapped": {"key": KEY}}}})
    expected = base64.b64encode(hmac.new(KEY, b"jen@example.com", hashlib.sha256).digest())
    assert r.item.value == expected.decode()
    with pytest.raises(exceptions.InvalidArgument, match="32 or 64 bytes"):
        on_text(dlp, parent, "jen@example.com",
                {"crypto_hash_config": {"crypto_key": {"unwrapped": {"key": b"short"}}}})
    twice = [on_text(dlp, parent, "jen@example.com", {"crypto_hash_config": {
        "crypto_key": {"transient": {"name": "k"}}}}).item.value for _ in range(2)]
    assert twice[0] != twice[1]  # a transient key is made again for each request


def test_deterministic_encryption_round_trips_with_reidentify(dlp, parent):
    deterministic = {"crypto_key": {"unwrapped": {"key": KEY}},
                     "surrogate_info_type": {"name": "EMAIL_TOKEN"}}
    text = "from jen@example.com to ada@example.com and jen@example.com"
    r = on_text(dlp, parent, text, {"crypto_deterministic_config": deterministic})
    tokens = r.item.value.split()
    assert tokens[1].startswith("EMAIL_TOKEN(") and tokens[1] == tokens[5] != tokens[3]
    length, body = tokens[1][len("EMAIL_TOKEN("):].split("):")
    assert int(length) == len(body)
    assert "jen" not in r.item.value
    back = dlp.reidentify_content(request={
        "parent": parent, "item": {"value": r.item.value},
        "inspect_config": {"custom_info_types": [
            {"info_type": {"name": "EMAIL_TOKEN"}, "surrogate_type": {}}]},
        "reidentify_config": {"info_type_transformations": {"transformations": [
            {"info_types": [{"name": "EMAIL_TOKEN"}],
             "primitive_transformation": {"crypto_deterministic_config": deterministic}}]}}})
    assert back.item.value == text


def test_a_transient_key_does_not_outlive_its_request(dlp, parent):
    deterministic = {"crypto_key": {"transient": {"name": "session"}},
                     "surrogate_info_type": {"name": "TOKEN"}}
    r = on_text(dlp, parent, "jen@example.com", {"crypto_deterministic_config": deterministic})
    with pytest.raises(exceptions.FailedPrecondition, match="Re-identification failed"):
        dlp.reidentify_content(request={
            "parent": parent, "item": {"value": r.item.value},
            "inspect_config": {"custom_info_types": [
                {"info_type": {"name": "TOKEN"}, "surrogate_type": {}}]},
            "reidentify_config": {"info_type_transformations": {"transformations": [
                {"primitive_transformation": {
                    "crypto_deterministic_config": deterministic}}]}}})


def test_reidentify_accepts_only_reversible_transformations(dlp, parent):
    with pytest.raises(exceptions.InvalidArgument, match="reversible"):
        dlp.reidentify_content(request={
            "parent": parent, "item": {"value": "x"},
            "reidentify_config": {"info_type_transformations": {"transformations": [
                {"primitive_transformation": {"replace_with_info_type_config": {}}}]}}})


def test_tables_with_a_context_field_keep_referential_integrity(dlp, parent):
    deterministic = {"crypto_key": {"unwrapped": {"key": KEY}}, "context": {"name": "id"}}
    r = on_table(dlp, parent, ["email"], {"crypto_deterministic_config": deterministic})
    emails = [v.string_value for v in column(r, "email")]
    assert emails[0] == emails[2] != emails[1] and "@" not in "".join(emails)
    (summary,) = r.overview.transformation_summaries
    assert summary.field.name == "email" and summary.results[0].count == 3
    assert summary.field_transformations[0].fields[0].name == "email"
    back = dlp.reidentify_content(request={
        "parent": parent, "item": {"table": r.item.table},
        "reidentify_config": {"record_transformations": {"field_transformations": [
            {"fields": [{"name": "email"}],
             "primitive_transformation": {"crypto_deterministic_config": deterministic}}]}}})
    assert [v.string_value for v in column(back, "email")] == \
        ["ada@example.com", "bob@example.org", "ada@example.com"]


def test_date_shift_same_context_same_shift(dlp, parent):
    shift = {"upper_bound_days": 100, "lower_bound_days": -100, "context": {"name": "id"},
             "crypto_key": {"unwrapped": {"key": KEY}}}
    r = on_table(dlp, parent, ["visit"], {"date_shift_config": shift})
    original = [datetime.date(2024, 3, 1), datetime.date(2024, 3, 2), datetime.date(2024, 5, 9)]
    shifted = [datetime.date(v.date_value.year, v.date_value.month, v.date_value.day)
               for v in column(r, "visit")]
    deltas = [(s - o).days for s, o in zip(shifted, original, strict=True)]
    assert deltas[0] == deltas[2] and all(-100 <= d <= 100 for d in deltas)
    again = on_table(dlp, parent, ["visit"], {"date_shift_config": shift})
    assert column(again, "visit") == column(r, "visit")  # the key makes it repeatable


def test_date_shift_in_text(dlp, parent):
    r = on_text(dlp, parent, "born 1980-05-17", {"date_shift_config": {
        "upper_bound_days": 10, "lower_bound_days": 1}}, info_types=("DATE_OF_BIRTH",))
    shifted = datetime.date.fromisoformat(r.item.value.split()[1])
    assert 1 <= (shifted - datetime.date(1980, 5, 17)).days <= 10
    with pytest.raises(exceptions.InvalidArgument, match="365250"):
        on_text(dlp, parent, "born 1980-05-17", {"date_shift_config": {
            "upper_bound_days": 400000, "lower_bound_days": 0}}, info_types=("DATE_OF_BIRTH",))


def test_bucketing(dlp, parent):
    r = on_table(dlp, parent, ["age"], {"fixed_size_bucketing_config": {
        "lower_bound": {"integer_value": 10}, "upper_bound": {"integer_value": 90},
        "bucket_size": 10}})
    assert [v.string_value for v in column(r, "age")] == ["30-40", "-10", "90+"]
    r = on_table(dlp, parent, ["age"], {"bucketing_config": {"buckets": [
        {"min": {"integer_value": 0}, "max": {"integer_value": 18},
         "replacement_value": {"string_value": "minor"}},
        {"min": {"integer_value": 18}, "max": {"integer_value": 65},
         "replacement_value": {"string_value": "adult"}}]}})
    assert [column(r, "age")[0].string_value, column(r, "age")[1].string_value] == \
        ["adult", "minor"]
    assert column(r, "age")[2].integer_value == 95  # in no bucket: left as it is
    with pytest.raises(exceptions.InvalidArgument, match="bucket_size"):
        on_table(dlp, parent, ["age"], {"fixed_size_bucketing_config": {
            "lower_bound": {"integer_value": 10}, "upper_bound": {"integer_value": 90},
            "bucket_size": 0}})


def test_info_type_transformations_inside_a_field(dlp, parent):
    table = {"headers": [{"name": "note"}, {"name": "other"}],
             "rows": [{"values": [{"string_value": "write to jen@example.com"},
                                  {"string_value": "ada@example.com"}]}]}
    r = dlp.deidentify_content(request={
        "parent": parent, "item": {"table": table},
        "inspect_config": {"info_types": [{"name": "EMAIL_ADDRESS"}]},
        "deidentify_config": {"record_transformations": {"field_transformations": [
            {"fields": [{"name": "note"}], "info_type_transformations": {"transformations": [
                {"primitive_transformation": {"replace_with_info_type_config": {}}}]}}]}}})
    assert column(r, "note")[0].string_value == "write to [EMAIL_ADDRESS]"
    assert column(r, "other")[0].string_value == "ada@example.com"


def test_errors_left_untransformed_are_counted(dlp, parent):
    table = {"headers": [{"name": "when"}],
             "rows": [{"values": [{"string_value": "2024-01-05"}]},
                      {"values": [{"string_value": "soon"}]}]}
    shift = {"date_shift_config": {"upper_bound_days": 5, "lower_bound_days": 5}}
    with pytest.raises(exceptions.InvalidArgument, match="not a date"):
        on_table(dlp, parent, ["when"], shift, table=table)
    r = dlp.deidentify_content(request={
        "parent": parent, "item": {"table": table},
        "deidentify_config": {
            "transformation_error_handling": {"leave_untransformed": {}},
            "record_transformations": {"field_transformations": [
                {"fields": [{"name": "when"}], "primitive_transformation": shift}]}}})
    assert [v.string_value for v in column(r, "when")] == ["2024-01-10", "soon"]
    results = {x.code: x for x in r.overview.transformation_summaries[0].results}
    assert results[CODES.SUCCESS].count == 1 and results[CODES.ERROR].count == 1
    assert "not a date" in results[CODES.ERROR].details


def test_bad_configs(dlp, parent):
    with pytest.raises(exceptions.InvalidArgument, match="infoType transformations"):
        on_table(dlp, parent, ["email"], {"replace_with_info_type_config": {}})
    with pytest.raises(exceptions.InvalidArgument, match="table items"):
        dlp.deidentify_content(request={
            "parent": parent, "item": {"value": "x"},
            "deidentify_config": {"record_transformations": {"field_transformations": [
                {"fields": [{"name": "a"}],
                 "primitive_transformation": {"redact_config": {}}}]}}})
    with pytest.raises(exceptions.InvalidArgument, match="deidentify_config"):
        dlp.deidentify_content(request={"parent": parent, "item": {"value": "x"}})
    with pytest.raises(exceptions.MethodNotImplemented, match="LAB_BACKEND=gcp"):
        on_text(dlp, parent, "jen@example.com", {"crypto_hash_config": {
            "crypto_key": {"kms_wrapped": {"wrapped_key": b"x", "crypto_key_name": "k"}}}})
