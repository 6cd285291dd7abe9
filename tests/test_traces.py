"""Tests of servegym.traces: raw-trace loaders, query types, Azure days and demand, synthetic demand."""

from __future__ import annotations

import gzip
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from servegym.traces import (
    AZURE_DAYS,
    TEST_DAYS,
    TRAIN_DAYS,
    VALIDATION_DAY,
    Demand,
    SyntheticDemand,
    TraceFormatError,
    azure_day,
    azure_demand,
    day_minute_series,
    day_request_totals,
    derive_query_types,
    load_minute_trace,
    load_query_types,
    load_request_trace,
    mean_daily_profile,
    synthetic_demand,
)
from servegym.traces.build import build_processed_data
from servegym.traces.query_types import write_query_types

REPO_ROOT = Path(__file__).resolve().parent.parent
RAW_DIR = REPO_ROOT.parent / "shared" / "traces" / "azure"
needs_raw = pytest.mark.skipif(not RAW_DIR.is_dir(), reason=f"raw Azure traces not found at {RAW_DIR}")
DATA_DIR = Path(str(resources.files("servegym.traces").joinpath("data")))

REQUEST_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
MINUTE_HEADER = (
    "minute,code_requests,code_context_tokens,code_generated_tokens,"
    "conv_requests,conv_context_tokens,conv_generated_tokens\n"
)
WEEK_CODE_REQUESTS = 16_803_695
WEEK_CONV_REQUESTS = 27_303_999


def _write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- loaders ----------------------------------------------------------------------------------------


def test_load_request_trace__parses_columns_and_dtypes(tmp_path: Path) -> None:
    path = _write(tmp_path, REQUEST_HEADER + "2023-11-16 18:17:03.9799600,4808,10\n2023-11-16 18:17:04.03,3,8\n")
    trace = load_request_trace(path)
    assert list(trace.columns) == ["timestamp", "prompt_tokens", "output_tokens"]
    assert pd.api.types.is_datetime64_any_dtype(trace["timestamp"])
    assert trace["prompt_tokens"].dtype == np.int64 and trace["output_tokens"].dtype == np.int64
    assert trace["prompt_tokens"].tolist() == [4808, 3]
    assert trace["timestamp"].iloc[0] == pd.Timestamp("2023-11-16 18:17:03.97996")


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        (
            "TIMESTAMP,ContextTokens\n2023-11-16 18:17:03,5\n",
            ["missing required column(s) ['GeneratedTokens']", "found columns ['TIMESTAMP', 'ContextTokens']"],
        ),
        (
            REQUEST_HEADER + "2023-11-16 18:17:03,5,1\n2023-11-16 18:17:04,abc,1\n",
            ["data row 2", "'ContextTokens'", "'abc'", "not a number"],
        ),
        (
            REQUEST_HEADER + "2023-11-16 18:17:03,5,-3\n",
            ["data row 1", "'GeneratedTokens'", "'-3'", "negative"],
        ),
        (REQUEST_HEADER + "2023-11-16 18:17:03,5.5,1\n", ["data row 1", "'5.5'", "not an integer"]),
        (REQUEST_HEADER + "2023-11-16 18:17:03,,1\n", ["data row 1", "'ContextTokens'", "empty"]),
        (REQUEST_HEADER + "yesterday,5,1\n", ["data row 1", "'TIMESTAMP'", "'yesterday'", "not a timestamp"]),
        (
            REQUEST_HEADER + "2023-11-16 18:17:03,5,1\n2023-11-16 18:17:05,5,1\n2023-11-16 18:17:04,5,1\n",
            ["data row 3", "time goes backwards", "data row 2"],
        ),
        ("", ["file is empty"]),
        (REQUEST_HEADER, ["no data rows"]),
    ],
    ids=[
        "missing-column",
        "non-numeric",
        "negative",
        "fractional",
        "empty-field",
        "bad-time",
        "backwards",
        "empty-file",
        "header-only",
    ],
)
def test_load_request_trace__rejects_malformed_file(tmp_path: Path, body: str, fragments: list[str]) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(TraceFormatError) as info:
        load_request_trace(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_load_request_trace__allows_equal_timestamps(tmp_path: Path) -> None:
    path = _write(tmp_path, REQUEST_HEADER + "2023-11-16 18:17:03,5,1\n2023-11-16 18:17:03,6,2\n")
    assert len(load_request_trace(path)) == 2


def test_load_request_trace__missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="file not found"):
        load_request_trace(tmp_path / "nope.csv")


def test_load_minute_trace__skips_comments_and_parses(tmp_path: Path) -> None:
    path = _write(tmp_path, "# a comment\n# another\n" + MINUTE_HEADER + "0,1,2,3,4,5,6\n1,7,8,9,10,11,12\n")
    trace = load_minute_trace(path)
    assert trace.shape == (2, 7)
    assert all(dtype == np.int64 for dtype in trace.dtypes)
    assert trace["conv_generated_tokens"].tolist() == [6, 12]


@pytest.mark.parametrize(
    ("rows", "fragments"),
    [
        ("0,1,2,3,4,5,6\n2,1,2,3,4,5,6\n", ["data row 2", "'minute'", "value 2", "expected 1"]),
        ("0,1,2,3,4,5,6\n1,1,2,3,4,5,6\n0,1,2,3,4,5,6\n", ["data row 3", "value 0 after minute 1"]),
        ("0,1,2,3,4,x5,6\n", ["data row 1", "'conv_context_tokens'", "'x5'", "not a number"]),
        ("0,1,2,3,-4,5,6\n", ["data row 1", "'conv_requests'", "negative"]),
    ],
    ids=["gap", "backwards", "non-numeric", "negative"],
)
def test_load_minute_trace__rejects_malformed_rows(tmp_path: Path, rows: str, fragments: list[str]) -> None:
    path = _write(tmp_path, "# header comment\n" + MINUTE_HEADER + rows)
    with pytest.raises(TraceFormatError) as info:
        load_minute_trace(path)
    for fragment in [str(path), *fragments]:
        assert fragment in str(info.value)


def test_load_minute_trace__missing_column_names_found_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "minute,code_requests\n0,1\n")
    with pytest.raises(TraceFormatError, match=r"missing required column\(s\) \['code_context_tokens'"):
        load_minute_trace(path)


def test_load_minute_trace__comment_only_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="not a well-formed CSV"):
        load_minute_trace(_write(tmp_path, "# only comments\n"))


@needs_raw
def test_loaders__read_the_raw_azure_files() -> None:
    code = load_request_trace(RAW_DIR / "AzureLLMInferenceTrace_code.csv")
    conv = load_request_trace(RAW_DIR / "AzureLLMInferenceTrace_conv.csv")
    minutes = load_minute_trace(RAW_DIR / "azure2024-llm-minutes.csv")
    assert (len(code), len(conv), len(minutes)) == (8819, 19366, 10080)
    assert minutes["code_requests"].sum() == WEEK_CODE_REQUESTS
    assert minutes["conv_requests"].sum() == WEEK_CONV_REQUESTS


# --- query types ------------------------------------------------------------------------------------


def test_load_query_types__shipped_table_is_consistent() -> None:
    table = load_query_types()
    assert table["name"].tolist() == [
        "code-short",
        "code-medium",
        "code-long",
        "conv-short",
        "conv-medium",
        "conv-long",
    ]
    assert dict(zip(table["service"], table["task_family"], strict=True)) == {"code": "code", "conv": "general"}
    np.testing.assert_allclose(table.groupby("service")["share"].sum(), 1.0, rtol=0, atol=1e-12)
    assert (table["share"] >= 0.01).all()
    assert table["source"].str.contains("Splitwise").all()
    assert (table["p50_prompt_tokens"] <= table["p95_prompt_tokens"]).all()
    assert (table["mean_prompt_tokens"] >= table["prompt_min_tokens"]).all()


def test_derive_query_types__merges_a_class_below_one_percent() -> None:
    prompts = [10] * 600 + [2000] * 398 + [5000] * 2  # long holds 0.2 % of requests
    requests = pd.DataFrame({"prompt_tokens": prompts, "output_tokens": [1] * len(prompts)})
    table = derive_query_types({"code": requests})
    assert table["name"].tolist() == ["code-short", "code-medium"]
    assert table["request_count"].tolist() == [600, 400]
    assert table["prompt_min_tokens"].tolist() == [0, 1024]
    assert table["prompt_max_tokens"].iloc[0] == 1023 and pd.isna(table["prompt_max_tokens"].iloc[1])


def test_derive_query_types__merges_small_middle_class_into_larger_neighbour() -> None:
    prompts = [10] * 300 + [2000] * 5 + [5000] * 695
    requests = pd.DataFrame({"prompt_tokens": prompts, "output_tokens": [1] * len(prompts)})
    table = derive_query_types({"conv": requests})
    assert table["name"].tolist() == ["conv-short", "conv-long"]
    assert table["prompt_min_tokens"].tolist() == [0, 1024]
    assert table["request_count"].tolist() == [300, 700]


def test_load_query_types__rejects_bad_share(tmp_path: Path) -> None:
    table = load_query_types()
    table.loc[1, "share"] = 1.5
    path = tmp_path / "query_types.csv"
    table.to_csv(path, index=False)
    with pytest.raises(TraceFormatError, match=r"data row 2, field 'share': value '1\.5' is not in \[0, 1\]"):
        load_query_types(path)
    table["share"] = table["share"].astype(str)
    table.loc[1, "share"] = "n/a"
    table.to_csv(path, index=False)
    with pytest.raises(TraceFormatError, match=r"data row 2, field 'share': value 'n/a' is not a finite"):
        load_query_types(path)


def test_load_query_types__reads_its_own_output(tmp_path: Path) -> None:
    path = tmp_path / "query_types.csv"
    path.write_text(write_query_types(load_query_types()))
    pd.testing.assert_frame_equal(load_query_types(path), load_query_types())


# --- days and split ---------------------------------------------------------------------------------


def test_split__disjoint_covering_and_mixed() -> None:
    assert len(AZURE_DAYS) == 7 and len(set(AZURE_DAYS)) == 7
    assert not set(TRAIN_DAYS) & set(TEST_DAYS)
    assert set(TRAIN_DAYS) | set(TEST_DAYS) == set(AZURE_DAYS)
    assert VALIDATION_DAY in TRAIN_DAYS
    test_weekdays = {azure_day(name).weekday for name in TEST_DAYS}
    assert test_weekdays & {"sat", "sun"} and test_weekdays - {"sat", "sun"}


def test_azure_day__pairs_same_weekday_and_covers_each_series_once() -> None:
    days = [azure_day(name) for name in AZURE_DAYS]
    for day in days:
        assert day.code_date.weekday() == day.conv_date.weekday()
        assert day.name == f"{day.conv_date.isoformat()}-{day.weekday}"
    assert sorted(day.code_first_minute for day in days) == [k * 1440 for k in range(7)]
    assert sorted(day.conv_first_minute for day in days) == [k * 1440 for k in range(7)]
    assert azure_day("2024-05-17-fri").code_date.isoformat() == "2024-05-10"
    assert azure_day(np.int64(1)).name == "2024-05-13-mon"


@pytest.mark.parametrize("day", [7, -1, "monday", "2024-05-19-sun", True, 1.0])
def test_azure_demand__bad_day_lists_valid_days(day: object) -> None:
    with pytest.raises(ValueError, match=r"unknown Azure day .*0=2024-05-12-sun.*6=2024-05-18-sat"):
        azure_demand(day)  # type: ignore[arg-type]


# --- demand -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("period_minutes", [5, 15, 60])
def test_azure_demand__shape_sign_and_read_only(period_minutes: int) -> None:
    demand = azure_demand("2024-05-13-mon", period_minutes)
    assert demand.rates_per_hour.shape == (1440 // period_minutes, 6)
    assert demand.query_types == tuple(load_query_types()["name"])
    assert (demand.rates_per_hour >= 0).all() and np.isfinite(demand.rates_per_hour).all()
    assert demand.day == "2024-05-13-mon" and demand.start_hour_utc == 0.0
    with pytest.raises(ValueError, match="read-only"):
        demand.rates_per_hour[0, 0] = 1.0


@pytest.mark.parametrize("period_minutes", [5, 15, 60])
@pytest.mark.parametrize("day", range(7))
def test_azure_demand__reproduces_daily_service_totals(day: int, period_minutes: int) -> None:
    demand = azure_demand(day, period_minutes, scale=2.0)
    requests = (demand.rates_per_hour * demand.period_hours).sum(axis=0)
    totals = day_request_totals(day)
    np.testing.assert_allclose(requests[:3].sum(), 2.0 * totals["code"], rtol=1e-12)
    np.testing.assert_allclose(requests[3:].sum(), 2.0 * totals["conv"], rtol=1e-12)


def test_day_request_totals__sum_to_the_week_totals() -> None:
    totals = [day_request_totals(day) for day in AZURE_DAYS]
    assert sum(t["code"] for t in totals) == WEEK_CODE_REQUESTS
    assert sum(t["conv"] for t in totals) == WEEK_CONV_REQUESTS


@needs_raw
def test_day_minute_series__matches_the_raw_minutes() -> None:
    raw = load_minute_trace(RAW_DIR / "azure2024-llm-minutes.csv")
    for name in AZURE_DAYS:
        day, shipped = azure_day(name), day_minute_series(name)
        for service, first in (("code", day.code_first_minute), ("conv", day.conv_first_minute)):
            for field in ("requests", "context_tokens", "generated_tokens"):
                column = f"{service}_{field}"
                np.testing.assert_array_equal(shipped[column], raw[column].iloc[first : first + 1440])
        raw_code = raw["code_requests"].iloc[day.code_first_minute : day.code_first_minute + 1440].sum()
        demand = azure_demand(name, 15)
        np.testing.assert_allclose((demand.rates_per_hour[:, :3] * 0.25).sum(), raw_code, rtol=1e-12)


@needs_raw
def test_day_minute_series__conv_hours_match_the_independent_hourly_file() -> None:
    hourly = pd.read_csv(RAW_DIR / "azure2024_conv_hourly.csv")
    for name in AZURE_DAYS:
        date = azure_day(name).conv_date.isoformat()
        expected = hourly.loc[hourly["date"] == date].sort_values("hour")["conversation"].to_numpy()
        if expected.size:
            per_hour = day_minute_series(name)["conv_requests"].to_numpy().reshape(24, 60).sum(axis=1)
            np.testing.assert_array_equal(per_hour, expected)


@pytest.mark.parametrize("period_minutes", [7, 0, -15, 15.0, 2880, True, "15"])
def test_azure_demand__bad_period_names_value_and_allowed(period_minutes: object) -> None:
    with pytest.raises(ValueError, match=rf"period_minutes={period_minutes!r} is invalid.*allowed: 1, 2, 3"):
        azure_demand(0, period_minutes)  # type: ignore[arg-type]


def test_azure_demand__rejects_negative_scale() -> None:
    with pytest.raises(ValueError, match="scale=-1"):
        azure_demand(0, 15, scale=-1.0)


def test_demand__rejects_mismatched_shape() -> None:
    with pytest.raises(ValueError, match=r"expected \(T >= 1, 2\)"):
        Demand(np.ones((4, 3)), ("a", "b"), 15, None, 0.0)


def test_shipped_data__loads_without_the_raw_folder(tmp_path: Path) -> None:
    # An audit hook fails any attempt to open a file under the raw-trace folder or a shared/ folder.
    script = (
        "import sys\n"
        "def hook(event, args):\n"
        "    if event == 'open' and isinstance(args[0], str) and 'shared' in args[0].split('/'):\n"
        "        raise RuntimeError('opened ' + args[0])\n"
        "sys.addaudithook(hook)\n"
        "from servegym.traces import azure_demand, load_query_types, synthetic_demand\n"
        "import numpy as np\n"
        "assert len(load_query_types()) == 6\n"
        "assert azure_demand('2024-05-16-thu', 5).rates_per_hour.shape == (288, 6)\n"
        "synthetic_demand(np.random.default_rng(0), [1.0], 96, 15, 0.2)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    total_bytes = sum(path.stat().st_size for path in DATA_DIR.iterdir() if path.is_file())
    assert total_bytes < 300_000


@needs_raw
def test_build_processed_data__reproduces_the_shipped_files(tmp_path: Path) -> None:
    written = build_processed_data(RAW_DIR, tmp_path)
    assert {path.name for path in written} == {"query_types.csv", "azure2024_minutes_by_day.csv.gz"}
    assert (tmp_path / "query_types.csv").read_bytes() == (DATA_DIR / "query_types.csv").read_bytes()
    built = (tmp_path / "azure2024_minutes_by_day.csv.gz").read_bytes()
    shipped = (DATA_DIR / "azure2024_minutes_by_day.csv.gz").read_bytes()
    # The CSV payload must be identical; the gzip bytes also are with the same zlib build.
    assert gzip.decompress(built) == gzip.decompress(shipped)


# --- synthetic demand -------------------------------------------------------------------------------


def test_synthetic_demand__same_seed_same_path() -> None:
    first = synthetic_demand(np.random.default_rng(7), [100.0, 50.0], 96, 15, sigma=0.3)
    second = synthetic_demand(np.random.default_rng(7), [100.0, 50.0], 96, 15, sigma=0.3)
    other = synthetic_demand(np.random.default_rng(8), [100.0, 50.0], 96, 15, sigma=0.3)
    np.testing.assert_array_equal(first.rates_per_hour, second.rates_per_hour)
    assert not np.array_equal(first.rates_per_hour, other.rates_per_hour)
    assert first.day is None and first.query_types == ("type-0", "type-1")


@pytest.mark.parametrize("period_minutes", [5, 15, 60])
def test_synthetic_demand__sigma_zero_is_the_profile(period_minutes: int) -> None:
    profile = mean_daily_profile(period_minutes)
    per_day = 1440 // period_minutes
    assert profile.shape == (per_day,)
    np.testing.assert_allclose(profile.mean(), 1.0, rtol=1e-12)
    demand = synthetic_demand(np.random.default_rng(0), [10.0, 20.0], 2 * per_day, period_minutes, sigma=0.0)
    expected = np.outer(np.tile(profile, 2), [10.0, 20.0])
    np.testing.assert_allclose(demand.rates_per_hour, expected, rtol=1e-12)


def test_synthetic_demand__custom_profile_per_type() -> None:
    profile = np.column_stack([np.linspace(0.5, 1.5, 24), np.ones(24)])
    demand = synthetic_demand(np.random.default_rng(0), [4.0, 2.0], 24, 60, 0.0, diurnal_profile=profile)
    np.testing.assert_allclose(demand.rates_per_hour, profile * [4.0, 2.0])


def test_synthetic_demand__lognormal_noise_has_mean_one() -> None:
    flat = np.ones(24)
    spec = SyntheticDemand(np.ones(50), periods=4000, period_minutes=60, sigma=0.5, diurnal_profile=flat)
    factors = spec.sample(np.random.default_rng(1)).rates_per_hour
    assert abs(factors.mean() - 1.0) < 0.01  # 200,000 draws; std of the mean ≈ 0.0012
    np.testing.assert_allclose(np.log(factors).std(), 0.5, rtol=0.01)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sigma": -0.1}, "sigma=-0.1"),
        ({"periods": 0}, "periods=0"),
        ({"period_minutes": 7}, "period_minutes=7 is invalid"),
        ({"diurnal_profile": np.ones(10)}, r"diurnal_profile has shape \(10,\); expected \(96,\)"),
        ({"base_rates_per_hour": [-1.0]}, "non-negative"),
    ],
)
def test_synthetic_demand__rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    arguments: dict[str, object] = {"base_rates_per_hour": [1.0], "periods": 96, "period_minutes": 15, "sigma": 0.1}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        synthetic_demand(np.random.default_rng(0), **arguments)  # type: ignore[arg-type]


def test_synthetic_demand__requires_a_generator() -> None:
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator"):
        synthetic_demand(np.random.RandomState(0), [1.0], 96)  # type: ignore[arg-type]
