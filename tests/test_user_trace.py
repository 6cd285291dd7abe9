"""Your own traces: reading any trace file, turning it into episodes, the env and CLI entry points."""

from __future__ import annotations

import datetime
import gzip
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import servegym.envs  # noqa: F401  (registers the environment ids)
from servegym.cli import main
from servegym.envs.demand_source import DemandSourceError, TraceDemand, parse_demand_source
from servegym.envs.scenarios import make_instance, trace_instance
from servegym.traces import TraceFormatError, day_minute_series, load_query_types
from servegym.traces.user_trace import TraceOptions, load_trace, split_days

SHARED_AZURE = Path(__file__).resolve().parents[2] / "shared" / "traces" / "azure"
EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "requests-2days.csv.gz"
DAY = datetime.date(2026, 11, 30)


def _requests(rng: np.random.Generator, days: int = 2, per_minute: float = 3.0) -> pd.DataFrame:
    """Poisson arrivals over ``days`` days from 00:00 of DAY, two services, lognormal tokens."""
    minutes = np.arange(days * 1440)
    rate = per_minute * (1.2 + np.sin(2 * np.pi * minutes / 1440.0))
    counts = rng.poisson(rate)
    start = np.sort(np.repeat(minutes, counts) + rng.uniform(0.0, 0.999, counts.sum()))
    start[0], start[-1] = 0.0, days * 1440 - 0.01  # cover both edges exactly
    stamps = pd.Timestamp(DAY) + pd.to_timedelta(start, unit="min")
    return pd.DataFrame(
        {
            "timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "service": rng.choice(["chat", "code"], start.size),
            "prompt_tokens": rng.lognormal(6.5, 1.0, start.size).astype(int) + 1,
            "output_tokens": rng.lognormal(4.5, 0.7, start.size).astype(int) + 1,
        }
    )


@pytest.fixture(scope="module")
def request_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trace") / "requests.csv"
    _requests(np.random.default_rng(0)).to_csv(path, index=False)
    return path


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- reading


def test_requests_with_tokens__derive_query_types_per_service(request_file: Path) -> None:
    trace = load_trace(request_file)
    assert trace.format == "requests" and trace.kind == "query-types"
    assert trace.columns == {
        "time": "timestamp",
        "service": "service",
        "prompt": "prompt_tokens",
        "output": "output_tokens",
    }
    assert set(trace.services) == {"chat", "code"}
    assert all(name.split("-")[0] in ("chat", "code") for name in trace.streams)
    assert trace.query_types is not None
    families = dict(zip(trace.query_types["service"], trace.query_types["task_family"], strict=True))
    assert families == {"chat": "general", "code": "code"}
    assert trace.covered == (0, 2 * 1440) and trace.full_days == (0, 1)
    assert trace.requests == trace.minute_counts.sum()


def test_per_request_file_and_its_minute_counts_give_the_same_demand(request_file: Path, tmp_path: Path) -> None:
    table = pd.read_csv(request_file)
    minute = (pd.to_datetime(table["timestamp"]) - pd.Timestamp(DAY)).dt.total_seconds() // 60
    counts = pd.crosstab(minute.astype(int), table["service"]).reindex(range(2 * 1440), fill_value=0)
    counts_file = tmp_path / "counts.csv"
    pd.DataFrame(
        {
            "timestamp": (pd.Timestamp(DAY) + pd.to_timedelta(counts.index, unit="min")).strftime("%Y-%m-%dT%H:%M"),
            **{f"{service}_requests": counts[service].to_numpy() for service in counts.columns},
        }
    ).to_csv(counts_file, index=False)
    instance = make_instance("azure")
    rng = np.random.default_rng(0)
    for spec in ("types=total", "types=total&scale=absolute"):
        per_request = parse_demand_source(f"trace:{request_file}?{spec}", sigma=0, noise_sigma=0)
        aggregated = parse_demand_source(f"trace:{counts_file}?{spec}", sigma=0, noise_sigma=0)
        a = per_request.sample(instance, rng, period_minutes=15, num_periods=192)
        b = aggregated.sample(instance, rng, period_minutes=15, num_periods=192)
        np.testing.assert_allclose(a.rates_per_hour, b.rates_per_hour, rtol=1e-12)
    assert load_trace(counts_file).format == "counts"


def test_azure_2024_minute_file_through_trace_equals_the_builtin_azure_day(tmp_path: Path) -> None:
    minutes = day_minute_series("2024-05-16-thu")
    table = minutes.drop(columns=["minute_of_day"])
    table.insert(0, "minute", np.arange(1440))
    path = _write(tmp_path / "azure-thu.csv", "# Azure 2024 per-minute format\n" + table.to_csv(index=False))
    instance = make_instance("azure")
    rng = np.random.default_rng(0)
    builtin = parse_demand_source("azure:2024-05-16-thu", sigma=0, noise_sigma=0)
    through_trace = parse_demand_source(f"trace:{path}?scale=absolute", sigma=0, noise_sigma=0)
    expected = builtin.sample(instance, rng, period_minutes=15, num_periods=96)
    played = through_trace.sample(instance, rng, period_minutes=15, num_periods=96)
    assert "per service" in played.label
    np.testing.assert_allclose(played.rates_per_hour, expected.rates_per_hour, rtol=1e-12)


@pytest.mark.skipif(not SHARED_AZURE.is_dir(), reason="needs ../shared/traces/azure")
def test_raw_azure_files_read_through_the_generic_reader() -> None:
    code = load_trace(SHARED_AZURE / "AzureLLMInferenceTrace_code.csv", TraceOptions(service_name="code"))
    shipped = load_query_types().set_index("name")
    assert code.streams == ("code-short", "code-medium", "code-long")
    derived = code.query_types.set_index("name")
    for column in ("request_count", "share", "mean_prompt_tokens", "mean_output_tokens"):
        np.testing.assert_allclose(derived[column], shipped.loc[list(code.streams), column])
    week = load_trace(SHARED_AZURE / "azure2024-llm-minutes.csv")
    assert week.format == "counts" and week.streams == ("code", "conv") and len(week.full_days) == 7
    assert week.relative_time and week.requests == 16_803_695 + 27_303_999


def test_formats_detected_from_the_header(tmp_path: Path) -> None:
    burst = _write(
        tmp_path / "burst.csv",
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        "5,ChatGPT,472,18,490,Conversation log\n45,ChatGPT,1087,30,1117,Conversation log\n"
        "118,GPT-4,417,30,447,Conversation log\n",
    )
    trace = load_trace(burst)
    assert trace.time_unit == "s" and trace.relative_time
    assert trace.columns["service"] == "Model" and set(trace.services) == {"ChatGPT", "GPT_4"}
    epoch = _write(tmp_path / "epoch.csv", "ts,requests\n1764460800,10\n1764461100,20\n")  # 2025-11-30 00:00 UTC
    trace = load_trace(epoch)
    assert (trace.format, trace.time_unit, trace.day0) == ("counts", "epoch-s", datetime.date(2025, 11, 30))
    assert trace.covered == (0, 10) and trace.minute_counts[:, 0].tolist() == [2.0] * 5 + [4.0] * 5
    iso = _write(tmp_path / "iso.csv", "time\n2026-11-30T10:00:00+01:00\n2026-11-30T10:30:00+01:00\n")
    trace = load_trace(iso)
    assert trace.kind == "services" and trace.streams == ("trace",) and trace.covered == (540, 571)


def test_comment_lines_anywhere_are_skipped_and_gzip_is_read(tmp_path: Path) -> None:
    path = tmp_path / "c.csv.gz"
    path.write_bytes(gzip.compress(b"# head\nminute,requests\n0,5\n# middle\n1,7\n"))
    trace = load_trace(path)
    assert trace.requests == 12 and trace.covered == (0, 2)


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ("", ["file is empty"]),
        ("# only a comment\n", ["only comment or blank lines"]),
        ("a,b\n1,2\n", ["unknown trace format", "found columns ['a', 'b']"]),
        ("timestamp\n", ["header (line 1) but no data rows"]),
        ("timestamp\nyesterday\n", ["line 2, field 'timestamp'", "'yesterday' is not a timestamp"]),
        (
            "timestamp\n2026-11-30 10:00\n# note\n2026-11-30 09:00\n",
            ["line 4, field 'timestamp'", "goes backwards", "line 2"],
        ),
        ("minute,requests\n0,3\n1,-2\n", ["line 3, field 'requests'", "'-2'", "non-negative"]),
        ("minute,requests\n0,3\n0,2\n", ["line 3, field 'minute'", "repeats"]),
        ("minute,requests\n0,3\n1,2\n3,1\n", ["line 4, field 'minute'", "interval of 2 min", "no gaps"]),
        ("ts,requests\n0,1\n30,1\n", ["line 3, field 'ts'", "not on a whole minute"]),
        ("minute,requests\n0,x\n", ["line 2, field 'requests'", "'x'"]),
        ("timestamp,prompt_tokens\n2026-11-30 10:00,5\n", ["prompt-token column but no output-token column"]),
        (
            "timestamp,service,prompt_tokens,output_tokens\n2026-11-30 10:00,,5,5\n",
            ["line 2, field 'service'", "empty service"],
        ),
        (
            "timestamp,prompt_tokens,output_tokens\n2026-11-30 10:00,5,1.5\n",
            ["line 2, field 'output_tokens'", "not an integer"],
        ),
        ("day,hour,conversation\n0,0,5\n", ["unknown trace format"]),
        ("date,hour,conversation\n2024-05-12,0,5\n", ["cannot tell the format", "['hour', 'conversation']"]),
        ("minute,a,b\n0,1,2\n", ["no count column", "counts=COL1+COL2"]),
    ],
)
def test_malformed_traces_are_rejected_naming_file_line_and_field(
    tmp_path: Path, body: str, fragments: list[str]
) -> None:
    path = _write(tmp_path / "bad.csv", body)
    with pytest.raises(TraceFormatError) as error:
        load_trace(path)
    message = str(error.value)
    assert message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_file_and_bad_options_are_named(tmp_path: Path, request_file: Path) -> None:
    with pytest.raises(TraceFormatError, match=r"nope\.csv: file not found"):
        load_trace(tmp_path / "nope.csv")
    for spec, fragment in [
        ("?timeunit=s", "not one of"),
        ("?time_unit=hours", "time_unit='hours' not one of"),
        ("?time=when", "time='when' is not a column"),
        ("?split=dev", "split='dev' not one of"),
        ("?scale=relative", "scale='relative' not one of"),
        ("?rate_scale=-1", "rate_scale=-1.0 must be finite and > 0"),
        ("?start=2020-01-01", "start='2020-01-01': the trace covers days 0–1"),
        ("?split=test&start=1", "start applies to split=all"),
        ("?split", "must be key=value"),
    ]:
        with pytest.raises((DemandSourceError, TraceFormatError), match=fragment.replace("(", r"\(")):
            parse_demand_source(f"trace:{request_file}{spec}", sigma=0, noise_sigma=0)


def test_split_rule_is_chronological_with_a_quarter_of_the_days_held_out() -> None:
    seven = (0, 7 * 1440)
    assert split_days(seven, "test") == (5, 6)
    assert split_days(seven, "train") == (0, 1, 2, 3, 4)
    assert split_days(seven, "validation") == (4,)
    assert split_days((0, 2 * 1440), "test") == (1,)
    assert split_days((30, 3 * 1440), "all") == (1, 2)


# ---------------------------------------------------------------- episodes


def test_episodes_play_consecutive_days_and_splits_draw_whole_days(request_file: Path) -> None:
    trace = load_trace(request_file)
    instance = trace_instance(trace)
    rng = np.random.default_rng(0)
    whole = TraceDemand(request_file).sample(instance, rng, period_minutes=60, num_periods=48)
    rates = trace.period_rates(60, 0, 48)
    np.testing.assert_allclose(whole.rates_per_hour, rates, rtol=1e-12)  # λ = peak, so nominal-peak = absolute
    assert whole.day_names == ("2026-11-30-mon", "2026-12-01-tue") and whole.weekday[[0, 47]].tolist() == [0, 1]
    test = TraceDemand(request_file, split="test").sample(instance, rng, period_minutes=60, num_periods=24)
    np.testing.assert_allclose(test.rates_per_hour, rates[24:])
    second = TraceDemand(request_file, start="2026-12-01").sample(instance, rng, period_minutes=60, num_periods=24)
    np.testing.assert_allclose(second.rates_per_hour, rates[24:])
    with pytest.raises(DemandSourceError, match="holds 24 whole periods of 60 min"):
        TraceDemand(request_file, start=1).check_horizon(period_minutes=60, num_periods=25)


def test_nominal_peak_maps_the_busiest_train_hour_to_the_nominal_demand(request_file: Path) -> None:
    instance = make_instance("paper")
    demand = TraceDemand(request_file, types="total", split="train")
    played = demand.sample(instance, np.random.default_rng(0), period_minutes=60, num_periods=24)
    assert "total load" in played.label
    np.testing.assert_allclose(played.rates_per_hour.max(axis=0), instance.demand_per_hour, rtol=1e-12)
    shares = played.rates_per_hour / played.rates_per_hour.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        shares, np.broadcast_to(instance.demand_per_hour / instance.demand_per_hour.sum(), shares.shape)
    )


def test_rate_scale_grows_the_traffic_and_the_instance_built_for_it(request_file: Path) -> None:
    base = TraceDemand(request_file)
    grown = TraceDemand(request_file, rate_scale=10)
    np.testing.assert_allclose(grown.own_instance().demand_per_hour, 10 * base.own_instance().demand_per_hour)
    instance = make_instance("azure")
    rng = np.random.default_rng(0)
    a = TraceDemand(request_file, scale="absolute", types="total").sample(
        instance, rng, period_minutes=15, num_periods=4
    )
    b = TraceDemand(request_file, scale="absolute", types="total", rate_scale=10).sample(
        instance, rng, period_minutes=15, num_periods=4
    )
    np.testing.assert_allclose(b.rates_per_hour, 10 * a.rates_per_hour)


def test_label_is_a_spec_that_parses_back_to_the_same_source(request_file: Path) -> None:
    source = TraceDemand(request_file, split="test", rate_scale=3, read=TraceOptions(service_column="", start_date=DAY))
    assert source.label == f"trace:{request_file}?split=test&rate_scale=3&service=&start_date=2026-11-30"
    again = parse_demand_source(source.label, sigma=0, noise_sigma=0)
    assert again.label == source.label and again.trace.services == ("trace",)


# ---------------------------------------------------------------- environment and CLI


def test_env_plays_a_trace_on_its_own_query_types(request_file: Path) -> None:
    env = gym.make("servegym/Provisioning-v3", demand=f"trace:{request_file}?split=test")
    names = tuple(q.name for q in env.unwrapped.instance.query_types)
    assert names == load_trace(request_file).streams
    obs, info = env.reset(seed=0)
    assert "per type" in info["demand_label"] and "2026-12-01-tue" in info["demand_label"]
    obs, reward, *_ = env.step(env.action_space.sample())
    assert np.isfinite(reward)
    assert env.observation_space.contains(obs)


def test_env_takes_trace_objects_and_reset_options(request_file: Path) -> None:
    env = gym.make("servegym/Provisioning-v3", demand=TraceDemand(request_file, types="total", split="train"))
    assert env.unwrapped.instance.name.startswith("azure")
    _, info = env.reset(seed=0)
    assert "total load" in info["demand_label"]
    _, info = env.reset(seed=0, options={"demand": f"trace:{request_file}?split=test"})
    assert "2026-12-01-tue" in info["demand_label"] and "total load" in info["demand_label"]  # no 'chat-' type


def test_env_time_of_day_follows_a_trace_that_starts_mid_day(tmp_path: Path) -> None:
    rows = "\n".join(f"2026-11-30T18:{m:02d}:00,2" for m in range(0, 60, 1))
    path = _write(tmp_path / "evening.csv", "timestamp,requests\n" + rows + "\n")
    env = gym.make("servegym/Provisioning-v3", demand=f"trace:{path}", horizon_hours=0.75, scenario="toy")
    obs, _ = env.reset(seed=0)
    angle = 2 * np.pi * 18 / 24
    np.testing.assert_allclose(obs["time"][:2], [np.sin(angle), np.cos(angle)], atol=1e-6)
    with pytest.raises(DemandSourceError, match=r"18:00 to 19:00 UTC \(60 min\).*at most 1"):
        gym.make("servegym/Provisioning-v3", demand=f"trace:{path}", horizon_hours=2.0, scenario="toy")


def test_cli_trace_inspect_prints_the_report_and_writes_the_figure(
    request_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rate.png"
    assert main(["trace", "inspect", str(request_file), "--out", str(out), "--period-minutes", "60"]) == 0
    text = capsys.readouterr().out
    for fragment in ("format: requests", "2026-11-30-mon (train), 2026-12-01-tue (test)", "chat-short", "nominal"):
        assert fragment in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["trace", "inspect", str(tmp_path / "missing.csv")]) == 2
    assert "servegym trace inspect: error:" in capsys.readouterr().err


def test_cli_evaluate_plays_a_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = f"trace:{EXAMPLE}?split=test&rate_scale=20"
    argv = ["evaluate", "--demand", spec, "--policies", "gh-rolling,agh-static", "--no-progress", "--out"]
    assert main([*argv, str(tmp_path)]) == 0
    episodes = pd.read_csv(tmp_path / "episodes.csv")
    assert set(episodes["episode"]) == {f"{spec}/s0"} and (episodes["total_cost"] > 0).all()
    assert main(["evaluate", "--demand", spec, "--days", "test", "--out", str(tmp_path)]) == 2
    assert "--demand and --days both given" in capsys.readouterr().err


def test_sweep_config_reads_a_trace_relative_to_the_config_file(request_file: Path, tmp_path: Path) -> None:
    from servegym.experiments.experiment_config import ConfigError, load_config

    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "mine.csv").write_bytes(request_file.read_bytes())
    body = (
        '[scenarios.mine]\nscenario = "toy"\ndemand = "trace:mine.csv?split=test"\n{days}\n'
        '[sweep]\npolicies = ["gh-static"]\nscenarios = ["mine"]\n'
    )
    config = load_config(_write(folder / "sweep.toml", body.format(days="days = []")))
    assert config.scenarios["mine"].demand == f"trace:{folder / 'mine.csv'}?split=test"
    with pytest.raises(ConfigError, match=r"plays the trace's own days; set days = \[\]"):
        load_config(_write(folder / "sweep.toml", body.format(days="")))
    with pytest.raises(ConfigError, match=r"\[scenarios.mine\] demand = 'trace:gone.csv'.*gone.csv: file not found"):
        load_config(
            _write(folder / "sweep.toml", body.replace("mine.csv?split=test", "gone.csv").format(days="days = []"))
        )


def test_trace_lead_in_is_the_trace_before_the_episode(tmp_path: Path) -> None:
    days = [day_minute_series(day).drop(columns=["minute_of_day"]) for day in ("2024-05-15-wed", "2024-05-16-thu")]
    table = pd.concat(days, ignore_index=True)
    table.insert(0, "minute", np.arange(len(table)))
    path = _write(tmp_path / "two-days.csv", "# two Azure days\n" + table.to_csv(index=False))
    instance = make_instance("azure")
    rng = np.random.default_rng(0)
    first = parse_demand_source(f"trace:{path}?scale=absolute", sigma=0, noise_sigma=0)
    second = parse_demand_source(f"trace:{path}?scale=absolute&start=1", sigma=0, noise_sigma=0)
    assert first.sample(instance, rng, period_minutes=15, num_periods=96).lead_in_per_hour is None
    whole = first.sample(instance, rng, period_minutes=15, num_periods=192)
    played = second.sample(instance, rng, period_minutes=15, num_periods=96)
    np.testing.assert_allclose(played.lead_in_per_hour, whole.rates_per_hour[92:96], rtol=1e-12)
