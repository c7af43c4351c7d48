"""Vertex AI Feature Store (the current one, not Legacy), over the local BigQuery.

registry.py: the feature registry (featureGroups over a BigQuery table or view, features);
online_stores.py: featureOnlineStores (Bigtable and Optimized), featureViews and their syncs
(manual and on the view's cron); sources.py: what a sync reads from BigQuery (the latest
values per entity); serving.py: fetchFeatureValues from the synced values; routes.py: the
REST routes of FeatureRegistryService, FeatureOnlineStoreAdminService and
FeatureOnlineStoreService.
"""
