"""Tests of google-cloud-bigquery's system suite that cannot pass offline by nature, by node
id (a parametrized test's id without its [...] covers every case), each with its reason.
Everything not listed here is expected to pass against the local BigQuery.

Only `bigquery-public-data.ml_datasets` exists locally (labkit/bigquery/public_data.py);
Google's sample bucket gs://cloud-samples-data, Data Catalog and Resource Manager tags are
services of real Google Cloud.
"""

PUBLIC = "reads a public dataset that is not local: bigquery-public-data.{}"
SAMPLES = "reads Google's sample bucket gs://cloud-samples-data ({})"
PANDAS_3 = ("expects a STRING column's pandas dtype to be 'object'; the pandas 3 of this lock "
            "gives 'str', against real BigQuery too")
CLIENT = "tests/system/test_client.py::"
BQ = CLIENT + "TestBigQuery::"

KNOWN: dict[str, str] = {
    BQ + "test_close_releases_open_sockets": PUBLIC.format("samples.natality"),
    BQ + "test_list_datasets_w_project": "lists the datasets of the bigquery-public-data "
                                         "project (expects usa_names)",
    BQ + "test_get_table_w_public_dataset": PUBLIC.format("samples.shakespeare"),
    BQ + "test_list_partitions": PUBLIC.format("ethereum_blockchain"),
    BQ + "test_copy_table": PUBLIC.format("samples.shakespeare"),
    BQ + "test_query_w_page_size": PUBLIC.format("samples.shakespeare"),
    BQ + "test_query_w_start_index": PUBLIC.format("samples.shakespeare"),
    BQ + "test_large_query_w_public_data": PUBLIC.format("usa_names"),
    BQ + "test_dbapi_fetch_w_bqstorage_client_large_result_set": PUBLIC.format(
        "hacker_news.full"),
    BQ + "test_dbapi_dry_run_query": PUBLIC.format("utility_us"),
    BQ + "test_dbapi_connection_does_not_leak_sockets": PUBLIC.format("hacker_news.full"),
    CLIENT + "test_dbapi_create_view": PUBLIC.format("usa_names.usa_1910_2013"),
    BQ + "test_create_routine": SAMPLES.format("a JavaScript UDF library"),
    BQ + "test_create_external_table_with_reference_file_schema_uri_avro": SAMPLES.format(
        "Avro files"),
    BQ + "test_create_external_table_with_reference_file_schema_uri_parquet": SAMPLES.format(
        "Parquet files"),
    BQ + "test_load_table_from_uri_with_reference_file_schema_uri_avro": SAMPLES.format(
        "Avro files"),
    BQ + "test_load_table_from_uri_with_reference_file_schema_uri_parquet": SAMPLES.format(
        "Parquet files"),
    BQ + "test_update_table_autodetect_schema": SAMPLES.format(
        "an external table's Avro files"),
    BQ + "test_create_table_with_real_custom_policy": "creates Data Catalog taxonomies and "
                                                      "policy tags (a Google service)",
    BQ + "test_update_dataset": "creates Resource Manager tag keys and values "
                                "(a Google service)",
    BQ + "test_update_table": "creates Resource Manager tag keys and values "
                              "(a Google service)",
    "tests/system/test_pandas.py::test_query_results_to_dataframe": PUBLIC.format(
        "hacker_news.full"),
    "tests/system/test_pandas.py::test_query_results_to_dataframe_w_bqstorage": PUBLIC.format(
        "hacker_news.full"),
    "tests/system/test_pandas.py::test_list_rows_max_results_w_bqstorage": PUBLIC.format(
        "utility_us.country_code_iso"),
    "tests/system/test_query.py::test_query_w_timeout": PUBLIC.format("github_repos.commits"),
    "tests/system/test_query.py::test_query_statistics": PUBLIC.format(
        "samples.gsod and samples.natality"),
    "tests/system/test_magics.py::test_bigquery_magic": PUBLIC.format(
        "stackoverflow.posts_questions"),
    # not about the backend: the test pins pandas 2's dtypes (its twin for the plain scalars
    # table, test_list_rows_nullable_scalars_dtypes, is skipped beyond pandas 1 for that)
    "tests/system/test_pandas.py::test_list_rows_nullable_scalars_extreme_dtypes": PANDAS_3,
}
