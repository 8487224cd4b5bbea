"""The review API under /api/v1/review/: a reviewer's queue, items, decisions (one or in
bulk), tags, and the reports (JSON and CSV); the policies for reading. The same use cases,
role checks and audit entries as the pages (``usecases.reviewing``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from mailvault.mime_leaves import leaves
from mailvault.usecases import reviewing
from mailvault.web.api import ApiJSON, Limit, Offset
from mailvault.web.identity import PrincipalDep, VaultDep
from mailvault.web.reports_csv import csv_response

router = APIRouter(prefix="/api/v1/review", default_response_class=ApiJSON, tags=["review"])

PolicyRef = Annotated[str | None, Query(max_length=100, description="A policy's name or id.")]


class Decision(BaseModel):
    """A decision: no_issue, escalate or violation; a note is required for the last two."""

    decision: str = Field(max_length=16)
    note: str = Field(default="", max_length=4000)


class BulkDecision(Decision):
    """One decision for several items (all are decided, or none)."""

    items: list[int] = Field(min_length=1, max_length=1000)


class NewTag(BaseModel):
    tag: str = Field(max_length=64)


@router.get("/policies", summary="Review policies")
def policies(who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return {"policies": [p.to_json() for p in reviewing.list_policies(vault, who)]}


@router.get("/queue", summary="The caller's review queue")
def queue(who: PrincipalDep, vault: VaultDep, include_decided: bool = False,
          policy: PolicyRef = None, limit: Limit = 500, offset: Offset = 0) -> dict[str, Any]:
    """Open items (decided ones too with ``include_decided``), each with why it is queued."""
    items = reviewing.queue(vault, who, include_decided=include_decided, policy=policy,
                            limit=limit, offset=offset)
    return {"items": [i.to_json() for i in items]}


@router.get("/items/{item_id}", summary="One review item with its message")
def item(item_id: int, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    """The item, its message's fields and text, and its tags (audited as a view)."""
    opened = reviewing.open_item(vault, who, item_id)
    parts = leaves(opened.message.raw)
    text = "\n\n".join(p.text() for p in parts
                       if p.is_body_text and p.content_type == "text/plain")
    return {"item": opened.item.to_json(), "message": opened.message.row.to_json(),
            "text": text or opened.message.parsed.body, "tags": opened.tags}


@router.post("/items/{item_id}/decision", summary="Decide one item")
def decide(item_id: int, body: Decision, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    (decided,) = reviewing.decide(vault, who, [item_id], body.decision, body.note)
    return decided.to_json()


@router.post("/decisions", summary="Decide several items at once")
def decide_many(body: BulkDecision, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    decided = reviewing.decide(vault, who, body.items, body.decision, body.note)
    return {"items": [i.to_json() for i in decided]}


@router.post("/items/{item_id}/tags", summary="Tag an item's message")
def add_tag(item_id: int, body: NewTag, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return {"tags": reviewing.add_tag(vault, who, item_id, body.tag)}


@router.delete("/items/{item_id}/tags/{tag}", summary="Take a tag off an item's message")
def remove_tag(item_id: int, tag: str, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return {"tags": reviewing.remove_tag(vault, who, item_id, tag)}


@router.get("/reports", summary="Review report (per policy and period, per reviewer)")
def report(who: PrincipalDep, vault: VaultDep, policy: PolicyRef = None) -> dict[str, Any]:
    return reviewing.report(vault, who, policy).to_json()


@router.get("/reports.csv", summary="Review report as CSV", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
def report_csv(who: PrincipalDep, vault: VaultDep, policy: PolicyRef = None,
               table: Annotated[str, Query(pattern="^(periods|reviewers)$")] = "periods"
               ) -> Response:
    return csv_response(reviewing.report(vault, who, policy), table)
