"""Response model of an incoming webhook delivery."""

from __future__ import annotations

from pydantic import BaseModel


class WebhookAck(BaseModel):
    """What became of a delivery: ``applied``, ``duplicate``, ``no_change``, ``ignored``..."""

    delivery_id: str
    outcome: str
