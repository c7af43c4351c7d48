"""inspect_content through the real dlp_v2 client (gRPC via the proxy): built-in and custom
infoTypes, likelihoods, quotes, limits, locations, tables, and DLP's refusals."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import dlp_v2

L = dlp_v2.Likelihood


def inspect(dlp, parent, value=None, table=None, **config):
    item = {"value": value} if table is None else {"table": table}
    config.setdefault("include_quote", True)
    return dlp.inspect_content(request={"parent": parent, "item": item,
                                        "inspect_config": config}).result


def found(result) -> set[tuple[str, str]]:
    return {(f.info_type.name, f.quote) for f in result.findings}


def types(*names):
    return [{"name": n} for n in names]


def test_client_with_no_arguments_reaches_the_local_service(dlp, parent):
    result = inspect(dlp, parent, "write to jen@example.com", info_types=types("EMAIL_ADDRESS"))
    assert found(result) == {("EMAIL_ADDRESS", "jen@example.com")}
    assert dlp_v2.DlpServiceClient.DEFAULT_ENDPOINT == "dlp.googleapis.com"


def test_credit_cards_need_the_luhn_check(dlp, parent):
    text = "card 4111 1111 1111 1111 and 4111 1111 1111 1112, amex 378282246310005"
    result = inspect(dlp, parent, text, info_types=types("CREDIT_CARD_NUMBER"))
    assert found(result) == {("CREDIT_CARD_NUMBER", "4111 1111 1111 1111"),
                             ("CREDIT_CARD_NUMBER", "378282246310005")}
    assert result.findings[0].likelihood == L.VERY_LIKELY  # "card" nearby


@pytest.mark.parametrize("ssn,valid", [
    ("123-45-6789", True), ("000-12-3456", False), ("666-12-3456", False),
    ("912-34-5678", False), ("123-00-4567", False), ("123-45-0000", False),
    ("078-05-1120", False)])
def test_social_security_numbers_the_ssa_never_issues_are_rejected(dlp, parent, ssn, valid):
    result = inspect(dlp, parent, f"SSN: {ssn}", info_types=types("US_SOCIAL_SECURITY_NUMBER"))
    assert bool(result.findings) == valid


def test_iban_mod_97_and_ip_addresses(dlp, parent):
    text = ("pay GB82 WEST 1234 5698 7654 32 not GB82 WEST 1234 5698 7654 33; "
            "DE89370400440532013000; hosts 192.168.0.1, 999.1.1.1 and 2001:db8::1")
    result = inspect(dlp, parent, text, info_types=types("IBAN_CODE", "IP_ADDRESS"))
    assert found(result) == {("IBAN_CODE", "GB82 WEST 1234 5698 7654 32"),
                             ("IBAN_CODE", "DE89370400440532013000"),
                             ("IP_ADDRESS", "192.168.0.1"), ("IP_ADDRESS", "2001:db8::1")}


def test_date_of_birth_needs_its_context_words(dlp, parent):
    text = "Born 1980-05-17. Invoice dated 2024-01-02. DOB: March 3, 1975."
    result = inspect(dlp, parent, text, info_types=types("DATE_OF_BIRTH"))
    assert found(result) == {("DATE_OF_BIRTH", "1980-05-17"),
                             ("DATE_OF_BIRTH", "March 3, 1975")}
    low = inspect(dlp, parent, text, info_types=types("DATE_OF_BIRTH"),
                  min_likelihood=L.VERY_UNLIKELY)
    assert ("DATE_OF_BIRTH", "2024-01-02") in found(low)
    assert [f.likelihood for f in low.findings if f.quote == "2024-01-02"] == [L.UNLIKELY]


def test_person_names_from_first_names_and_honorifics(dlp, parent):
    text = "Patient name: Maria Lopez. Seen by Dr. Okonkwo. The grace period ends Friday."
    result = inspect(dlp, parent, text, info_types=types("PERSON_NAME"))
    assert found(result) == {("PERSON_NAME", "Maria Lopez"), ("PERSON_NAME", "Okonkwo")}
    assert {f.quote: f.likelihood for f in result.findings}["Maria Lopez"] == L.VERY_LIKELY


def test_phone_numbers(dlp, parent):
    text = "Call (206) 555-0123 or +44 20 7946 0958; order 2065550123 shipped."
    result = inspect(dlp, parent, text, info_types=types("PHONE_NUMBER"))
    assert found(result) == {("PHONE_NUMBER", "(206) 555-0123"),
                             ("PHONE_NUMBER", "+44 20 7946 0958")}


def test_min_likelihood_and_per_info_type(dlp, parent):
    text = "a note from Jennifer, jen@example.com"
    assert found(inspect(dlp, parent, text, info_types=types("PERSON_NAME", "EMAIL_ADDRESS"))) \
        == {("PERSON_NAME", "Jennifer"), ("EMAIL_ADDRESS", "jen@example.com")}
    assert found(inspect(dlp, parent, text, info_types=types("PERSON_NAME", "EMAIL_ADDRESS"),
                         min_likelihood=L.LIKELY)) == {("EMAIL_ADDRESS", "jen@example.com")}
    result = inspect(dlp, parent, text, info_types=types("PERSON_NAME", "EMAIL_ADDRESS"),
                     min_likelihood_per_info_type=[
                         {"info_type": {"name": "EMAIL_ADDRESS"},
                          "min_likelihood": L.VERY_LIKELY}])
    assert found(result) == {("PERSON_NAME", "Jennifer")}


def test_quotes_only_when_asked(dlp, parent):
    result = inspect(dlp, parent, "jen@example.com", include_quote=False)
    assert result.findings and all(f.quote == "" for f in result.findings)


def test_custom_regex_and_dictionary(dlp, parent):
    text = "Employee E-12345 works on Project Falcon and project falcon-2"
    result = inspect(dlp, parent, text, info_types=[], custom_info_types=[
        {"info_type": {"name": "EMPLOYEE_ID"}, "regex": {"pattern": r"E-(\d{5})",
                                                         "group_indexes": [1]}},
        {"info_type": {"name": "CODENAME"}, "likelihood": L.POSSIBLE,
         "dictionary": {"word_list": {"words": ["project falcon"]}}}])
    assert found(result) == {("EMPLOYEE_ID", "12345"), ("CODENAME", "Project Falcon"),
                             ("CODENAME", "project falcon")}
    likelihoods = {f.info_type.name: f.likelihood for f in result.findings}
    assert likelihoods == {"EMPLOYEE_ID": L.VERY_LIKELY, "CODENAME": L.POSSIBLE}


def test_byte_and_codepoint_ranges(dlp, parent):
    text = "Zoë → jen@example.com"
    (finding,) = inspect(dlp, parent, text, info_types=types("EMAIL_ADDRESS")).findings
    start = text.index("jen")
    assert (finding.location.codepoint_range.start, finding.location.codepoint_range.end) == \
        (start, start + 15)
    byte_start = len(text[:start].encode())
    assert (finding.location.byte_range.start, finding.location.byte_range.end) == \
        (byte_start, byte_start + 15)
    assert byte_start == start + 3  # ë is two bytes, → three


def test_limits_truncate_findings(dlp, parent):
    text = " ".join(f"user{i}@example.com" for i in range(6)) + " 10.0.0.1 10.0.0.2"
    result = inspect(dlp, parent, text, info_types=types("EMAIL_ADDRESS", "IP_ADDRESS"),
                     limits={"max_findings_per_request": 4})
    assert len(result.findings) == 4 and result.findings_truncated
    result = inspect(dlp, parent, text, info_types=types("EMAIL_ADDRESS", "IP_ADDRESS"),
                     limits={"max_findings_per_info_type": [
                         {"info_type": {"name": "EMAIL_ADDRESS"}, "max_findings": 2}]})
    assert [f.info_type.name for f in result.findings].count("EMAIL_ADDRESS") == 2
    assert [f.info_type.name for f in result.findings].count("IP_ADDRESS") == 2
    assert result.findings_truncated
    assert not inspect(dlp, parent, text, info_types=types("IP_ADDRESS")).findings_truncated


def test_tables_report_field_and_row(dlp, parent):
    table = {"headers": [{"name": "name"}, {"name": "email"}, {"name": "age"}],
             "rows": [{"values": [{"string_value": "Ada"}, {"string_value": "ada@example.com"},
                                  {"integer_value": 36}]},
                      {"values": [{"string_value": "Bob"}, {"string_value": "bob@example.org"},
                                  {"integer_value": 41}]}]}
    result = inspect(dlp, parent, table=table, info_types=types("EMAIL_ADDRESS"))
    where = [(f.quote, f.location.content_locations[0].record_location.field_id.name,
              f.location.content_locations[0].record_location.table_location.row_index)
             for f in result.findings]
    assert where == [("ada@example.com", "email", 0), ("bob@example.org", "email", 1)]
    assert result.findings[0].location.byte_range.start == 0


def test_list_info_types(dlp):
    names = {i.name for i in dlp.list_info_types(request={}).info_types}
    assert {"EMAIL_ADDRESS", "CREDIT_CARD_NUMBER", "PERSON_NAME", "IBAN_CODE"} <= names


# ---- refusals
def test_unknown_info_type(dlp, parent):
    with pytest.raises(exceptions.InvalidArgument, match='Invalid built-in info type name '
                                                         '"NOT_A_TYPE"'):
        inspect(dlp, parent, "x", info_types=types("NOT_A_TYPE"))


def test_bad_regex_and_empty_dictionary(dlp, parent):
    with pytest.raises(exceptions.InvalidArgument, match="Invalid regular expression"):
        inspect(dlp, parent, "x", custom_info_types=[
            {"info_type": {"name": "BAD"}, "regex": {"pattern": "("}}])
    with pytest.raises(exceptions.InvalidArgument, match="at least one word"):
        inspect(dlp, parent, "x", custom_info_types=[
            {"info_type": {"name": "EMPTY"}, "dictionary": {"word_list": {"words": []}}}])


def test_oversized_content_and_ragged_table(dlp, parent):
    with pytest.raises(exceptions.InvalidArgument, match="request size limit"):
        inspect(dlp, parent, "a" * 600_000)
    with pytest.raises(exceptions.InvalidArgument, match="headers"):
        inspect(dlp, parent, table={"headers": [{"name": "a"}],
                                    "rows": [{"values": [{"string_value": "1"},
                                                         {"string_value": "2"}]}]})


def test_bad_parent_and_templates(dlp):
    with pytest.raises(exceptions.InvalidArgument, match="Invalid parent"):
        dlp.inspect_content(request={"parent": "organizations/1", "item": {"value": "x"}})
    with pytest.raises(exceptions.MethodNotImplemented, match="LAB_BACKEND=gcp"):
        dlp.inspect_content(request={"parent": "projects/p", "item": {"value": "x"},
                                     "inspect_template_name": "projects/p/inspectTemplates/t"})


def test_methods_not_served_say_where_they_run(dlp, parent):
    with pytest.raises(exceptions.MethodNotImplemented, match="LAB_BACKEND=gcp"):
        dlp.list_inspect_templates(request={"parent": parent})


def test_calls_without_the_workspace_token_are_unauthenticated(local_env, parent):
    from google.oauth2.credentials import Credentials

    stranger = dlp_v2.DlpServiceClient(credentials=Credentials("not-the-workspace-token"))
    with pytest.raises(exceptions.Unauthenticated, match="invalid authentication"):
        stranger.inspect_content(request={"parent": parent, "item": {"value": "x"}})


def test_resource_manager_checks_the_token_too(local_env):
    from google.cloud import resourcemanager_v3
    from google.oauth2.credentials import Credentials

    project = resourcemanager_v3.ProjectsClient().get_project(name="projects/labkit-local")
    assert project.project_id == "labkit-local"
    from google.cloud.aiplatform import initializer
    from google.cloud.aiplatform.utils import resource_manager_utils

    # the call PipelineJob.submit() makes, with the credentials labkit.start() gave aiplatform
    assert resource_manager_utils.get_project_number(
        local_env.project, credentials=initializer.global_config.credentials) == "0"
    stranger = resourcemanager_v3.ProjectsClient(credentials=Credentials("wrong"))
    with pytest.raises(exceptions.Unauthenticated):
        stranger.get_project(name="projects/labkit-local")


def test_precision_and_recall_on_the_labelled_sample(dlp, parent):
    from tests.dlp import labelled

    seen = [found(inspect(dlp, parent, text, info_types=types(*labelled.INFO_TYPES)))
             for text, _ in labelled.SAMPLE]
    counts = labelled.score(seen)
    precision, recall = labelled.precision_recall(counts)
    misses = {name: c for name, c in counts.items() if c[1] or c[2]}
    assert precision >= 0.9 and recall >= 0.9, (precision, recall, misses)


def test_excluded_custom_types_and_exclude_info_types(dlp, parent):
    text = "ids E-12345 and jen@example.com"
    employee = {"info_type": {"name": "EMPLOYEE_ID"}, "regex": {"pattern": r"E-\d{5}"}}
    result = inspect(dlp, parent, text, info_types=types("EMAIL_ADDRESS"),
                     custom_info_types=[employee])
    assert ("EMPLOYEE_ID", "E-12345") in found(result)
    employee["exclusion_type"] = dlp_v2.CustomInfoType.ExclusionType.EXCLUSION_TYPE_EXCLUDE
    result = inspect(dlp, parent, text, info_types=types("EMAIL_ADDRESS"),
                     custom_info_types=[employee])
    assert found(result) == {("EMAIL_ADDRESS", "jen@example.com")}
    result = inspect(dlp, parent, text, info_types=types("EMAIL_ADDRESS"),
                     exclude_info_types=True)
    assert [(f.info_type.name, f.quote) for f in result.findings] == [("", "jen@example.com")]


def test_rules_are_refused_not_ignored(dlp, parent):
    with pytest.raises(exceptions.MethodNotImplemented, match="rule_set"):
        inspect(dlp, parent, "x", rule_set=[{"info_types": types("EMAIL_ADDRESS"), "rules": [
            {"exclusion_rule": {"regex": {"pattern": "x"}, "matching_type": 1}}]}])
