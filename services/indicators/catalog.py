"""The indicator catalog of docs/indicators.md, declared once: what the engine stores (components)
and how every indicator is computed from them (terms). The API serves it as is.

A *component* is an additive daily series the engine keeps per (segment, day) as deltas; a
*term* reads a component on the as-of day D: ``stock`` (cumulative up to D), ``stock_before``
(cumulative up to the day before the window starts), ``flow`` (sum over the window D-N+1..D) or
``mean`` (the mean over the window's days of the stock).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

Kind = Literal["stock", "flow", "quantile"]
Measure = Literal["stock", "stock_before", "flow", "mean"]
Family = Literal["loan", "client", "complaint"]

MONEY_SCALE = 4
LIKELIHOOD_SCALE = 10

# component -> decimal places of its stored integers (value = stored / 10**scale)
COMPONENT_SCALE: dict[str, int] = {
    "glp": MONEY_SCALE,
    "par30": MONEY_SCALE,
    "par90": MONEY_SCALE,
    "disb_amount": MONEY_SCALE,
    "writeoff": MONEY_SCALE,
}
EXIT_REASON_PREFIX = "exit_reason:"
EXIT_REASON_CODE_PREFIX = "exit_reason_share."
POVERTY_CODE = "poverty_outreach_entry"
POVERTY_N = "poverty_n."
POVERTY_SUM = "poverty_sum."
"""Poverty assessments are kept per poverty line (``poverty_sum.<line>``, ``poverty_n.<line>``):
likelihoods against different lines are never averaged together (docs/indicators.md)."""
CONDUCT_CATEGORIES = frozenset(
    {"staff_misconduct", "coercive_collection", "discrimination", "privacy", "hidden_fees"}
)

FAMILY_DIMENSIONS: dict[Family, tuple[str, ...]] = {
    "loan": ("branch", "product", "gender", "rural"),
    "client": ("branch", "gender", "rural"),
    "complaint": ("branch",),
}
GENDERS = ("female", "male", "other", "unknown")


def component_scale(component: str) -> int:
    if component.startswith(POVERTY_SUM):
        return LIKELIHOOD_SCALE
    return COMPONENT_SCALE.get(component, 0)


@dataclass(frozen=True, slots=True)
class Term:
    component: str
    measure: Measure

    def describe(self, window: int | None) -> str:
        if self.measure == "stock":
            return f"{self.component} on D"
        if self.measure == "stock_before":
            return f"{self.component} on D-{window}"
        if self.measure == "mean":
            return f"mean of {self.component} over the {window} days D-{(window or 1) - 1}..D"
        return f"Σ {self.component} over D-{(window or 1) - 1}..D"


@dataclass(frozen=True, slots=True)
class Indicator:
    code: str
    name: str
    kind: Kind
    window: int | None
    unit: str
    family: Family
    formula: str
    numerator: tuple[Term, ...] = ()
    denominator: tuple[Term, ...] | None = None
    multiplier: int = 1
    gni_denominator: bool = False
    quantile: Decimal | None = None
    serves: str = ""
    reference: str = ""
    parameters: tuple[str, ...] = field(default=())

    @property
    def segments(self) -> tuple[str, ...]:
        return ("all", *FAMILY_DIMENSIONS[self.family])

    def terms(self) -> tuple[Term, ...]:
        return self.numerator + (self.denominator or ())

    def components(self) -> set[str]:
        return {t.component for t in self.terms()}


def _s(component: str) -> Term:
    return Term(component, "stock")


def _f(component: str) -> Term:
    return Term(component, "flow")


CATALOG: tuple[Indicator, ...] = (
    Indicator(
        "active_clients", "Active clients", "stock", None, "clients", "client",
        "clients registered on or before D and without an exit effective on or before D",
        (_s("clients_active"),), serves="D1 scale; denominator",
    ),
    Indicator(
        "active_borrowers", "Active borrowers", "stock", None, "borrowers", "loan",
        "distinct clients with at least one open loan with outstanding principal > 0 on D",
        (_s("ab"),), serves="D1",
    ),
    Indicator(
        "gross_loan_portfolio", "Gross loan portfolio", "stock", None, "currency", "loan",
        "Σ outstanding principal of open loans on D",
        (_s("glp"),), serves="D6",
    ),
    Indicator(
        "women_borrower_share", "Women among active borrowers", "stock", None, "share", "loan",
        "active borrowers with gender=female ÷ active borrowers",
        (_s("ab_female"),), (_s("ab"),), serves="D1 target clients", reference="MFI-set target",
    ),
    Indicator(
        "rural_borrower_share", "Rural active borrowers", "stock", None, "share", "loan",
        "rural active borrowers ÷ active borrowers",
        (_s("ab_rural"),), (_s("ab"),), serves="D1", reference="MFI-set target",
    ),
    Indicator(
        "new_borrower_women_share", "Women among new borrowers", "flow", 90, "share", "loan",
        "first-cycle (loan_cycle = 1) disbursements to women ÷ first-cycle disbursements, 90 days",
        (_f("fc_female"),), (_f("fc_n"),), serves="D1 (leading signal)",
        reference="MFI-set target",
    ),
    Indicator(
        "avg_disbursed_amount", "Average loan disbursed", "flow", 90, "currency", "loan",
        "Σ amount disbursed ÷ number of disbursements, 90 days",
        (_f("disb_amount"),), (_f("disb_n"),), serves="D1 depth",
    ),
    Indicator(
        "avg_balance_gni_ratio", "Depth of outreach", "stock", None, "ratio", "loan",
        "gross loan portfolio ÷ (active borrowers × GNI per capita); null without GNI per capita",
        (_s("glp"),), (_s("ab"),), gni_denominator=True, serves="D1 (proxy)",
        reference="lower = deeper outreach", parameters=("gni_per_capita",),
    ),
    Indicator(
        "dropout_rate", "Drop-out rate", "flow", 365, "share", "client",
        "exits (explicit and inferred, except deceased) in the 365-day window ÷ (clients active "
        "on the day before the window starts + clients registered in the window)",
        (_f("exits_dropout"),), (Term("clients_active", "stock_before"), _f("registrations")),
        serves="D3 retention", reference="reported 25–60 % in East Africa; MFI-set",
        parameters=("dropout_delay_days",),
    ),
    Indicator(
        "client_retention_rate", "Client retention", "flow", 365, "share", "client",
        "clients active on D ÷ (clients active on the day before the window starts + clients "
        "registered in the 365-day window)",
        (_s("clients_active"),), (Term("clients_active", "stock_before"), _f("registrations")),
        serves="D3", reference="MFI-set; high is not automatically good",
        parameters=("dropout_delay_days",),
    ),
    Indicator(
        "par30", "Portfolio at risk > 30 days", "stock", None, "share", "loan",
        "Σ outstanding principal of open loans with days past due > 30 on D ÷ gross loan portfolio",
        (_s("par30"),), (_s("glp"),), serves="CP-2, D6",
        reference="Sa-Dhan: PAR ≤ 2 % for sustainable MFIs; crisis markets 2009: 7–13 %",
    ),
    Indicator(
        "par90", "Portfolio at risk > 90 days", "stock", None, "share", "loan",
        "Σ outstanding principal of open loans with days past due > 90 on D ÷ gross loan portfolio",
        (_s("par90"),), (_s("glp"),), serves="CP-2",
    ),
    Indicator(
        "write_off_ratio", "Write-off ratio", "flow", 365, "ratio", "loan",
        "Σ principal written off in the 365-day window ÷ (Σ of the gross loan portfolio over the "
        "window's days ÷ 365)",
        (_f("writeoff"),), (Term("glp", "mean"),), serves="CP-2, D6", reference="read with PAR",
    ),
    Indicator(
        "dsti_breach_share", "Debt-service-to-income breaches", "flow", 30, "share", "loan",
        "disbursements with instalment_monthly ÷ household_income_monthly > limit ÷ disbursements "
        "with both amounts > 0, 30 days",
        (_f("dsti_breach"),), (_f("dsti_n"),), serves="CP-2",
        reference="RBI 2022: repayments ≤ 50 % of household income ⇒ target 0",
        parameters=("dsti_limit",),
    ),
    Indicator(
        "multi_lender_share", "Multiple borrowing", "flow", 30, "share", "loan",
        "disbursements to clients with ≥ k other active lenders ÷ disbursements with the field "
        "known, 30 days",
        (_f("ml_hit"),), (_f("ml_n"),), serves="CP-2",
        reference="MFIN guardrail: ≤ 4 lenders per borrower", parameters=("lender_count",),
    ),
    Indicator(
        "complaints_per_1k_clients", "Complaint rate", "flow", 30, "per_1000_clients", "complaint",
        "1000 × complaints opened in the 30-day window ÷ clients active on D",
        (_f("cmp_opened"),), (_s("clients_active"),), multiplier=1000, serves="CP-7",
        reference="very low can mean an unusable channel",
    ),
    Indicator(
        "complaints_resolved_in_sla", "Complaints resolved in time", "flow", 90, "share",
        "complaint",
        "complaints resolved in the 90-day window within the SLA ÷ (complaints resolved in the "
        "window + complaints open on D older than the SLA)",
        (_f("cmp_resolved_sla"),), (_f("cmp_resolved"), _s("cmp_open_past_sla")), serves="CP-7",
        reference="RBI ombudsman route opens after 30 days", parameters=("sla_days",),
    ),
    Indicator(
        "complaint_resolution_days_p50", "Resolution time (median)", "quantile", 90, "days",
        "complaint",
        "median of resolved_at − opened_at (fractional days) over complaints resolved in the "
        "90-day window (linear interpolation, percentile_cont)",
        quantile=Decimal("0.5"), serves="CP-7", reference="vs SLA",
    ),
    Indicator(
        "complaint_resolution_days_p90", "Resolution time (90th percentile)", "quantile", 90,
        "days", "complaint",
        "90th percentile of resolved_at − opened_at (fractional days) over complaints resolved "
        "in the 90-day window (linear interpolation, percentile_cont)",
        quantile=Decimal("0.9"), serves="CP-7", reference="vs SLA",
    ),
    Indicator(
        "open_complaints_past_sla", "Open complaints past SLA", "stock", None, "complaints",
        "complaint", "complaints open on D whose age (D − opened day) exceeds the SLA",
        (_s("cmp_open_past_sla"),), serves="CP-7", reference="target 0",
        parameters=("sla_days",),
    ),
    Indicator(
        "conduct_complaint_share", "Sensitive complaints", "flow", 90, "share", "complaint",
        "complaints opened in the 90-day window with category in {staff_misconduct, "
        "coercive_collection, discrimination, privacy, hidden_fees} ÷ complaints opened",
        (_f("cmp_conduct"),), (_f("cmp_opened"),), serves="CP-5, CP-6, CP-7",
        reference="any upheld case should alert",
    ),
)  # fmt: skip

BY_CODE: dict[str, Indicator] = {i.code: i for i in CATALOG}


def exit_reason_indicator(reason: str) -> Indicator:
    """``exit_reason_share.<reason>``: one indicator per reason code seen in the data."""
    return Indicator(
        f"{EXIT_REASON_CODE_PREFIX}{reason}", f"Exit reason: {reason}", "flow", 90, "share",
        "client",
        f"explicit exits in the 90-day window with reason_code = {reason} ÷ explicit exits in "
        "the window with any reason_code",
        (_f(f"{EXIT_REASON_PREFIX}{reason}"),), (_f("exits_with_reason"),), serves="D3",
    )  # fmt: skip


def poverty_indicator(line: str, *, primary: bool = False) -> Indicator:
    """``poverty_outreach_entry`` (``primary``: the institution's primary line, a setting) or
    ``poverty_outreach_entry.<line>``: the mean likelihood over the assessments against one
    poverty line."""
    code = POVERTY_CODE if primary else f"{POVERTY_CODE}.{line}"
    name = "Poverty outreach at entry" + ("" if primary else f" ({line})")
    return Indicator(
        code, name, "flow", 90, "likelihood", "client",
        "mean PPI poverty likelihood over the assessments in the 90-day window against the "
        f"poverty line {line}" + (" (the institution's primary line)" if primary else ""),
        (_f(POVERTY_SUM + line),), (_f(POVERTY_N + line),), serves="D1",
        reference="MFI-set target", parameters=("poverty_line",) if primary else (),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Seen:
    """What the catalog's open-ended families depend on: the exit reason codes and poverty lines
    seen in the data, and the institution's primary poverty line (listed even before any
    assessment uses it)."""

    reasons: frozenset[str] = frozenset()
    lines: frozenset[str] = frozenset()
    primary_line: str = "national"

    @property
    def all_lines(self) -> list[str]:
        return sorted(self.lines | {self.primary_line})


def indicators(seen: Seen) -> list[Indicator]:
    """The full catalog: the fixed indicators, the poverty outreach on the primary line and on
    every line, and one exit-reason share per reason code."""
    out = list(CATALOG)
    pos = next(i for i, ind in enumerate(out) if ind.code == "new_borrower_women_share") + 1
    out[pos:pos] = [
        poverty_indicator(seen.primary_line, primary=True),
        *(poverty_indicator(line) for line in seen.all_lines),
    ]
    pos = next(i for i, ind in enumerate(out) if ind.code == "client_retention_rate") + 1
    out[pos:pos] = [exit_reason_indicator(r) for r in sorted(seen.reasons)]
    return out


def lookup(code: str, seen: Seen) -> Indicator | None:
    """The indicator of a code; a family member (``exit_reason_share.<reason>``,
    ``poverty_outreach_entry.<line>``) only if its reason or line was seen. A code is split at
    its first dot (``poverty_outreach_entry.usd_3.20`` is line ``usd_3.20``)."""
    if code in BY_CODE:
        return BY_CODE[code]
    if code == POVERTY_CODE:
        return poverty_indicator(seen.primary_line, primary=True)
    family, dot, member = code.partition(".")
    if not dot:
        return None
    if family + dot == EXIT_REASON_CODE_PREFIX:
        return exit_reason_indicator(member) if member in seen.reasons else None
    if family == POVERTY_CODE:
        return poverty_indicator(member) if member in seen.all_lines else None
    return None


def human_formula(ind: Indicator) -> str:
    """The formula as a reader sees it: the definition plus how it maps onto components."""
    if ind.quantile is not None:
        return ind.formula
    num = " + ".join(t.describe(ind.window) for t in ind.numerator)
    text = f"{ind.formula}. value = "
    text += f"{ind.multiplier} × " if ind.multiplier != 1 else ""
    if ind.denominator is None:
        return text + num
    den = " + ".join(t.describe(ind.window) for t in ind.denominator)
    if ind.gni_denominator:
        den = f"({den}) × gni_per_capita"
    return text + f"({num}) ÷ ({den})"
