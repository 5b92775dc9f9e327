"""The ROI model: every input of the seed's model exposed, every figure computed from them.

The seed printed, for a 500-seat center, $8,265,000 savings, $1,080,000 revenue, 1180% ROI and a
0.9-month payback. Its code could not be recovered (only the opening of the post is available),
so the formula below is rebuilt from the inputs the seed names; docs/analytics.md compares its
output with the printed figures. The defaults are ours, chosen so the two figures that can be
checked from the printed numbers alone agree: the retention revenue (12,000 at-risk customers x
15% retained x $600 = $1,080,000) and the first-year cost ($730,000, the only cost that makes
1180% and 0.9 months both true of $8,265,000 + $1,080,000).

    calls/year           = seats x calls per agent per day x working days
    handle-time savings  = calls/year x (AHT before - AHT after) / 60 x loaded cost per hour
    staffing savings     = seats x paid hours/year x loaded cost per hour x (overstaffing before - after)
    QA savings           = QA analyst salary x QA headcount reduction
    transfer savings     = calls/year x (transfer rate before - after) x cost per transfer
    retention revenue    = at-risk customers x retention rate x customer value
    first-year cost      = platform + integration + training
    ROI %                = (savings + revenue - cost) / cost x 100
    payback (months)     = cost / ((savings + revenue) / 12)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from analytics.errors import InvalidInput

FORMULA = (
    "calls/year = seats x calls per agent per day x working days",
    "handle-time savings = calls/year x (AHT before - AHT after) / 60 x loaded cost per hour",
    "staffing savings = seats x paid hours/year x loaded cost per hour x (overstaffing before - after)",
    "QA savings = QA analyst salary x QA headcount reduction",
    "transfer savings = calls/year x (transfer rate before - after) x cost per transfer",
    "retention revenue = at-risk customers x retention rate x customer value",
    "first-year cost = platform + integration + training",
    "ROI % = (savings + revenue - cost) / cost x 100",
    "payback months = cost / ((savings + revenue) / 12)",
)
SEED_PRINTED = {
    "total_savings": 8_265_000.0,
    "retention_revenue": 1_080_000.0,
    "roi_percent": 1180.0,
    "payback_months": 0.9,
}


class RoiInputs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seats: int = Field(default=500, ge=1, le=1_000_000, description="Agent seats.")
    calls_per_agent_per_day: float = Field(default=50.0, ge=0, le=1000)
    working_days: float = Field(default=250.0, ge=0, le=366, description="Working days a year.")
    aht_before_min: float = Field(
        default=8.0, ge=0, le=600, description="Average handle time before, minutes."
    )
    aht_after_min: float = Field(default=6.5, ge=0, le=600, description="Average handle time after, minutes.")
    loaded_cost_per_hour: float = Field(default=35.0, ge=0, le=10_000, description="Fully loaded agent cost.")
    paid_hours_per_year: float = Field(
        default=2080.0, ge=0, le=8784, description="Paid hours per seat a year."
    )
    overstaffing_before: float = Field(
        default=0.15, ge=0, le=1, description="Share of paid hours overstaffed."
    )
    overstaffing_after: float = Field(default=0.05, ge=0, le=1)
    qa_analyst_salary: float = Field(default=55_000.0, ge=0, le=10_000_000)
    qa_headcount_reduction: float = Field(
        default=8.0, ge=0, le=100_000, description="QA analysts no longer needed."
    )
    transfer_rate_before: float = Field(default=0.25, ge=0, le=1)
    transfer_rate_after: float = Field(default=0.12, ge=0, le=1)
    cost_per_transfer: float = Field(default=4.5, ge=0, le=10_000)
    at_risk_customers: float = Field(default=12_000.0, ge=0, le=1e9)
    retention_rate: float = Field(default=0.15, ge=0, le=1, description="Share of at-risk customers kept.")
    customer_value: float = Field(default=600.0, ge=0, le=1e9, description="Annual value of a kept customer.")
    platform_cost: float = Field(default=500_000.0, ge=0, le=1e12, description="First-year platform cost.")
    integration_cost: float = Field(default=150_000.0, ge=0, le=1e12)
    training_cost: float = Field(default=80_000.0, ge=0, le=1e12)

    @classmethod
    def parse(cls, data: dict[str, Any]) -> RoiInputs:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            raise InvalidInput(f"{field}: {first['msg']}" if field else first["msg"], field=field) from None


def compute(inputs: RoiInputs) -> dict[str, Any]:
    i = inputs
    calls = i.seats * i.calls_per_agent_per_day * i.working_days
    hours_saved = calls * (i.aht_before_min - i.aht_after_min) / 60.0
    aht = hours_saved * i.loaded_cost_per_hour
    staffing = (
        i.seats
        * i.paid_hours_per_year
        * i.loaded_cost_per_hour
        * (i.overstaffing_before - i.overstaffing_after)
    )
    qa = i.qa_analyst_salary * i.qa_headcount_reduction
    transfers = calls * (i.transfer_rate_before - i.transfer_rate_after) * i.cost_per_transfer
    savings = aht + staffing + qa + transfers
    revenue = i.at_risk_customers * i.retention_rate * i.customer_value
    cost = i.platform_cost + i.integration_cost + i.training_cost
    benefit = savings + revenue
    roi = (benefit - cost) / cost * 100.0 if cost > 0 else None
    payback = cost / (benefit / 12.0) if benefit > 0 else None
    return {
        "inputs": inputs.model_dump(),
        "calls_per_year": round(calls, 2),
        "agent_hours_saved": round(hours_saved, 2),
        "savings": {
            "handle_time": round(aht, 2),
            "staffing": round(staffing, 2),
            "qa": round(qa, 2),
            "transfers": round(transfers, 2),
        },
        "total_savings": round(savings, 2),
        "retention_revenue": round(revenue, 2),
        "total_benefit": round(benefit, 2),
        "first_year_cost": round(cost, 2),
        "net_benefit": round(benefit - cost, 2),
        "roi_percent": None if roi is None else round(roi, 2),
        "payback_months": None if payback is None else round(payback, 3),
        "formula": list(FORMULA),
    }


def seed_check() -> dict[str, Any]:
    """What the seed printed, what its printed figures imply, and what the model computes."""
    printed = SEED_PRINTED
    benefit = printed["total_savings"] + printed["retention_revenue"]
    implied_cost = benefit / (1 + printed["roi_percent"] / 100)
    computed = compute(RoiInputs())
    return {
        "printed": printed,
        "implied_first_year_cost": round(implied_cost, 2),
        "implied_payback_months": round(implied_cost / (benefit / 12), 3),
        "computed_with_defaults": {
            k: computed[k]
            for k in (
                "total_savings",
                "retention_revenue",
                "first_year_cost",
                "roi_percent",
                "payback_months",
            )
        },
    }
