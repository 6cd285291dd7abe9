"""servegym.traces: Azure-calibrated and synthetic LLM demand.

Real data (Microsoft Azure Public Dataset, CC-BY 4.0; see ``traces/data/PROVENANCE.md``): loaders for
the raw traces, query types derived from the 2023 per-request traces, per-period demand on seven
Azure days of the 2024 week-long traces with a fixed train/test split, and a synthetic generator.
"""

from servegym.traces.azure import TraceFormatError, load_minute_trace, load_request_trace
from servegym.traces.days import AZURE_DAYS, TEST_DAYS, TRAIN_DAYS, VALIDATION_DAY, AzureDay, azure_day
from servegym.traces.demand import (
    Demand,
    azure_demand,
    day_minute_series,
    day_request_totals,
    mean_daily_profile,
    service_period_requests,
    validation_peak_per_hour,
)
from servegym.traces.query_types import derive_query_types, load_query_types
from servegym.traces.synthetic import SyntheticDemand, synthetic_demand

__all__ = [
    "AZURE_DAYS",
    "TEST_DAYS",
    "TRAIN_DAYS",
    "VALIDATION_DAY",
    "AzureDay",
    "Demand",
    "SyntheticDemand",
    "TraceFormatError",
    "azure_day",
    "azure_demand",
    "day_minute_series",
    "day_request_totals",
    "derive_query_types",
    "load_minute_trace",
    "load_query_types",
    "load_request_trace",
    "mean_daily_profile",
    "service_period_requests",
    "synthetic_demand",
    "validation_peak_per_hour",
]
