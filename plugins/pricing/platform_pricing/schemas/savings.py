"""Response models of savings: the monthly report and the savings chart."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class SavingsFigures(BaseModel):
    """Hours, on-demand cost, actual cost, savings (price-hours) and savings percent."""

    hours: float
    on_demand_cost: float
    actual_cost: float
    savings: float
    savings_percent: float


class InstanceSavingsOut(SavingsFigures):
    """One instance's savings in the month; ``source`` says stored by the job or live."""

    instance_id: int
    client_id: int
    source: Literal["stored", "live"]
    missing_prices: bool


class ClientSavingsOut(SavingsFigures):
    """One client's totals in the month."""

    client_id: int


class SavingsReport(BaseModel):
    """Savings of a month: per instance, per client and the totals."""

    month: str
    start: datetime
    end: datetime
    complete: bool
    instances: list[InstanceSavingsOut]
    clients: list[ClientSavingsOut]
    totals: SavingsFigures


class MonthPoint(SavingsFigures):
    """One month of the savings chart."""

    month: str
    complete: bool


class SavingsChart(BaseModel):
    """Monthly savings, oldest month first, the current (incomplete) month last."""

    months: int
    series: list[MonthPoint]
