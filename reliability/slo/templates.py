"""PromQL templates. Rendered with str.format and explicit keys: a missing key is a KeyError,
never a silently empty string in a rule."""

from __future__ import annotations

# Zero traffic: `(total) > 0` drops the sample instead of dividing by zero (NaN); `or 0 * (total)`
# keeps the ratio at 0 when the error query has no series yet (no error ever happened).
EVENTS_RATIO = "(({error}) or (0 * ({total})))\n/\n(({total}) > 0)"
EVENTS_ERRORS = "({error}) or (0 * ({total}))"
EVENTS_TOTAL = "{total}"
RAW_RATIO = "({raw})"

# Traffic-weighted period SLI: sum of error rates over sum of total rates (same samples).
PERIOD_WEIGHTED = (
    "sum_over_time(slo:sli_error_events:rate{base}{{{sel}}}[{period}])\n"
    "/\n"
    "(sum_over_time(slo:sli_total_events:rate{base}{{{sel}}}[{period}]) > 0)"
)
# Raw SLIs have no event counts: the mean of the base-window ratios, as Sloth does.
PERIOD_MEAN = (
    "sum_over_time(slo:sli_error:ratio_rate{base}{{{sel}}}[{period}])\n"
    "/ ignoring (sloth_window)\n"
    "count_over_time(slo:sli_error:ratio_rate{base}{{{sel}}}[{period}])"
)
BURN_RATE = (
    "slo:sli_error:ratio_rate{window}{{{sel}}}\n"
    "/ on(sloth_id, sloth_slo, sloth_service) group_left\n"
    "slo:error_budget:ratio{{{sel}}}"
)
REMAINING = "1 - slo:period_burn_rate:ratio{{{sel}}}"
WINDOW_CHECK = "max(slo:sli_error:ratio_rate{window}{{{sel}}} > ({factor} * {budget})) without (sloth_window)"
PAIR = "(\n    {short_check}\n    and\n    {long_check}{gate}\n)"
GATE = "\n    and on()\n    ({total} > {min_rate})"

DEFAULT_SUMMARY = (
    "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is over expected."
)
DEFAULT_TITLE = (
    "({severity}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} "
    "SLO error budget burn rate is too fast."
)
