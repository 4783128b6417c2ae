"""SLO figures and burn-rate rules against hand computations, and the ``slos:`` section's validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from planwise_monitoring.alerting.policy import AlertType, Severity
from planwise_monitoring.evaluation.slo import (
    DEFAULT_BURN_RULES,
    AlertLevel,
    SloConfigError,
    SloCounts,
    burn_alerts,
    load_slo_file,
    parse_slo_config,
    slo_status,
)

HOUR = 3600.0
ON_TIME = {"name": "yearly-runs-on-time", "components": ["*"], "indicator": "within_sla", "objective": 99.0,
           "window": "28d"}


def one(**changes):
    return parse_slo_config([{**ON_TIME, **changes}], "sla.yaml")[0]


def test_figures_match_a_hand_computation():
    slo = one()
    # 2,000 judged runs in 28 days, 12 breaches: 8 in the last 3 days, 3 in the last 6 h, 1 in the last 5 min
    counts = SloCounts(events=2000, bad=12, bad_in={3 * 24 * HOUR: 8, 24 * HOUR: 5, 6 * HOUR: 3, 2 * HOUR: 2,
                                                     HOUR: 1, 1800.0: 1, 300.0: 1})
    status = slo_status(slo, counts)
    budget = 0.01 * 2000  # 20 breaches allowed in 28 days
    assert status.attainment_pct == pytest.approx(100 * 1988 / 2000)
    assert status.budget_remaining_pct == pytest.approx(100 * (1 - 12 / budget))  # 40 %
    window = 28 * 24 * HOUR
    for seconds, bad in counts.bad_in.items():
        assert status.burn_rates[seconds] == pytest.approx((bad / budget) / (seconds / window))
    # 1 h: 1/20 of the budget in 1/672 of the window = 33.6x >= 14.4, and 5 min: 403x -> a page
    assert status.burn_rates[HOUR] == pytest.approx(33.6)
    assert status.level is AlertLevel.PAGE
    assert {(r.level, r.long) for r in status.firing} == {("page", HOUR), ("page", 6 * HOUR), ("ticket", 24 * HOUR),
                                                          ("ticket", 72 * HOUR)}
    assert "40.0% of the error budget left" in status.summary()


def test_a_slow_burn_is_a_ticket_and_the_short_window_ends_a_page():
    slo = one()
    # one breach every 6 h for 3 days, the newest 3 h ago: nothing in the last hour or 2 hours
    counts = SloCounts(1000, 12, {72 * HOUR: 12, 24 * HOUR: 4, 6 * HOUR: 1, 2 * HOUR: 0, HOUR: 0, 1800.0: 0,
                                  300.0: 0})
    status = slo_status(slo, counts)
    assert status.burn_rates[72 * HOUR] == pytest.approx((12 / 10) / (72 / 672))  # 11.2x
    assert status.burn_rates[6 * HOUR] == pytest.approx((1 / 10) / (6 / 672))  # 11.2x, but its short window: 0
    assert [r.level for r in status.firing] == ["ticket"] and status.level is AlertLevel.TICKET
    assert status.budget_remaining_pct == pytest.approx(-20.0)  # overspent
    assert not status.met


def test_no_events_is_a_full_budget_and_no_alert():
    status = slo_status(one(), SloCounts(0, 0, {}))
    assert (status.attainment_pct, status.budget_remaining_pct, status.level) == (None, 100.0, AlertLevel.NONE)
    assert status.met and "no events" in status.summary()


def test_a_few_runs_in_a_quiet_hour_do_not_page_for_one_bad_run():
    # The request formula would say (1/3) / 1 % = 33x over the hour; by the budget it is 1 of 10 breaches
    # the month allows, in 1/672 of the month: 67x. With 10,000 runs a month it is 1 of 100: 6.7x, no page.
    status = slo_status(one(), SloCounts(10_000, 1, {HOUR: 1, 300.0: 1}))
    assert status.burn_rates[HOUR] == pytest.approx(6.72) and status.level is AlertLevel.NONE


def test_alerts_are_sent_when_the_level_rises_and_once():
    slo = one()
    page = slo_status(slo, SloCounts(1000, 5, {HOUR: 5, 300.0: 1, 6 * HOUR: 5, 1800.0: 1}))
    ticket = slo_status(slo, SloCounts(1000, 12, {72 * HOUR: 12, 6 * HOUR: 1}))
    alerts, levels = burn_alerts([page], {})
    [alert] = alerts
    assert (alert.alert_type, alert.severity) == (AlertType.SLO_FAST_BURN, Severity.CRITICAL)
    assert alert.component_name == "yearly-runs-on-time" and levels == {"yearly-runs-on-time": "PAGE"}
    assert burn_alerts([page], levels)[0] == []  # still burning: said already
    assert burn_alerts([ticket], levels) == ([], {"yearly-runs-on-time": "TICKET"})  # calmer: nothing new
    [again] = burn_alerts([page], {"yearly-runs-on-time": "TICKET"})[0]
    assert again.alert_type is AlertType.SLO_FAST_BURN
    [slow] = burn_alerts([ticket], {"yearly-runs-on-time": "NONE"})[0]
    assert (slow.alert_type, slow.severity) == (AlertType.SLO_SLOW_BURN, Severity.WARNING)


def test_defaults_and_an_under_duration_slo():
    slo = one(indicator="under_duration", threshold_seconds=20, objective=95, window="7d", components=["stg_*"],
              burn_alerts=[{"level": "page", "burn_rate": 10, "long": "1h", "short": "5m"}])
    assert slo.threshold_seconds == 20.0 and slo.window == 7 * 24 * HOUR and slo.components == ("stg_*",)
    assert slo.windows == [HOUR, 300.0] and one().burn_alerts == DEFAULT_BURN_RULES


@pytest.mark.parametrize(("change", "message"), [
    ({"indicator": "fast"}, "indicator must be one of ['within_sla', 'succeeded', 'under_duration'], got 'fast'"),
    ({"objetive": 99}, "unknown key(s) ['objetive']"),
    ({"objective": "99"}, "objective: Input should be a valid number"),
    ({"objective": 100.0}, "objective: Input should be less than 100"),
    ({"window": "28x"}, "window: expected a duration"),
    ({"window": float("nan")}, "window: expected a duration"),
    ({"indicator": "under_duration"}, "threshold_seconds is needed by indicator under_duration"),
    ({"threshold_seconds": 5}, "threshold_seconds is needed by indicator under_duration, and only by it"),
    ({"components": ["int_[ab]"]}, "wildcards: * and ?"),
    ({"name": "x'; DROP TABLE mon_alerts; --"}, "name: String should match pattern"),
    ({"burn_alerts": [{"level": "page", "burn_rate": 2, "long": "1h", "short": "2h"}]},
     "burn_alerts[0]: short (7200s) must be shorter than long (3600s)"),
    ({"burn_alerts": [{"level": "pager", "burn_rate": 2, "long": "1h", "short": "5m"}]},
     "burn_alerts[0].level: Input should be 'page' or 'ticket'"),
    ({"window": "1h", "burn_alerts": [{"level": "page", "burn_rate": 2, "long": "2h", "short": "5m"}]},
     "burn_alerts[0].long (7200s) is longer than the window (3600s)"),
])
def test_a_malformed_slo_names_the_file_entry_and_field(change, message):
    with pytest.raises(SloConfigError) as raised:
        parse_slo_config([{"name": "a", **{k: v for k, v in ON_TIME.items() if k != "name"}, **change}], "sla.yaml")
    assert str(raised.value).startswith("sla.yaml: slos[0]") and message in str(raised.value)


def test_names_are_unique_and_the_section_is_a_list():
    with pytest.raises(SloConfigError, match=r"slos\[1\] repeats the name 'yearly-runs-on-time' of slos\[0\]"):
        parse_slo_config([ON_TIME, ON_TIME], "sla.yaml")
    with pytest.raises(SloConfigError, match="'slos' must be a list"):
        parse_slo_config({"name": "x"}, "sla.yaml")


def test_the_sla_file_holds_the_slos_beside_its_definitions(tmp_path: Path):
    from planwise_monitoring.evaluation.sla import load_sla_file

    path = tmp_path / "sla.yaml"
    path.write_text("default: {sla_threshold_seconds: 300, warning_threshold_seconds: 240}\n"
                    "slos:\n  - {name: on-time, indicator: within_sla, objective: 99.5, window: 28d}\n")
    assert load_sla_file(path)[1] is not None  # the SLA parser accepts the section
    [slo] = load_slo_file(path)
    assert (slo.name, slo.objective) == ("on-time", 99.5)
    path.write_text("slos:\n  - {name: on-time, indicator: within_sla, objective: 99.5, window: 28d, x: 1}\n")
    with pytest.raises(SloConfigError, match=r"sla.yaml: slos\[0\] \(name='on-time'\): unknown key"):
        load_slo_file(path)
