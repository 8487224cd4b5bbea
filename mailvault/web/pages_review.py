"""The reviewer's pages: ``/review`` (their queue, with bulk decisions for clean items),
``/review/items/{id}`` (the message with the lexicon hits marked, its HTML in the same
sandboxed frame as the message page, tags, the decision form) and ``/review/reports`` (the
examiner's figures, also as CSV). Every action goes through ``usecases.reviewing`` with the
viewer's principal, which checks the role, the queue and writes the audit entries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailvault.review.highlight import marked
from mailvault.usecases import reviewing
from mailvault.web import mail_html
from mailvault.web.identity import FormViewerDep, VaultDep, ViewerDep, web_of
from mailvault.web.message_view import arranged
from mailvault.web.reports_csv import csv_response

router = APIRouter(include_in_schema=False)


@router.get("/review")
def queue_page(request: Request, who: ViewerDep, vault: VaultDep, all: int = 0,
               done: str = "") -> Response:
    items = reviewing.queue(vault, who.principal, include_decided=bool(all))
    return web_of(request).templates.TemplateResponse(request, "review_queue.html", {
        "viewer": who, "items": items, "all": bool(all), "done": done,
        "decisions": ("no_issue", "escalate", "violation")})


@router.get("/review/items/{item_id}")
def item_page(request: Request, item_id: int, who: ViewerDep, vault: VaultDep) -> Response:
    opened = reviewing.open_item(vault, who.principal, item_id)
    view = arranged(opened.message)
    terms = list(opened.hit_terms.values())
    return web_of(request).templates.TemplateResponse(request, "review_item.html", {
        "viewer": who, "it": opened.item, "m": view, "tags": opened.tags,
        "main_headers": [(name, marked(value, terms)) for name, value in view.main_headers],
        "text": marked(view.text, terms), "sandbox": mail_html.IFRAME_SANDBOX,
        "decisions": ("no_issue", "escalate", "violation")})


@router.post("/review/items/{item_id}/decide")
def decide_one(item_id: int, who: FormViewerDep, vault: VaultDep,
               decision: Annotated[str, Form()] = "",
               note: Annotated[str, Form()] = "") -> Response:
    reviewing.decide(vault, who.principal, [item_id], decision, note)
    return RedirectResponse(f"/review?done={item_id}", status_code=303)


@router.post("/review/decide")
def decide_many(who: FormViewerDep, vault: VaultDep,
                item: Annotated[list[int] | None, Form()] = None,
                decision: Annotated[str, Form()] = "no_issue",
                note: Annotated[str, Form()] = "") -> Response:
    """A bulk decision on the items ticked in the queue."""
    decided = reviewing.decide(vault, who.principal, item or [], decision, note)
    return RedirectResponse(f"/review?done={','.join(str(i.id) for i in decided)}",
                            status_code=303)


@router.post("/review/items/{item_id}/tags")
def add_tag(item_id: int, who: FormViewerDep, vault: VaultDep,
            tag: Annotated[str, Form()] = "") -> Response:
    reviewing.add_tag(vault, who.principal, item_id, tag)
    return RedirectResponse(f"/review/items/{item_id}#tags", status_code=303)


@router.post("/review/items/{item_id}/tags/remove")
def remove_tag(item_id: int, who: FormViewerDep, vault: VaultDep,
               tag: Annotated[str, Form()] = "") -> Response:
    reviewing.remove_tag(vault, who.principal, item_id, tag)
    return RedirectResponse(f"/review/items/{item_id}#tags", status_code=303)


@router.get("/review/reports")
def reports_page(request: Request, who: ViewerDep, vault: VaultDep,
                 policy: str | None = None) -> Response:
    result = reviewing.report(vault, who.principal, policy or None)
    terms = list(dict.fromkeys(t for p in result.periods for t in p.term_hits))
    return web_of(request).templates.TemplateResponse(request, "review_reports.html", {
        "viewer": who, "report": result, "terms": terms, "policy": policy or ""})


@router.get("/review/reports.csv")
def reports_csv(who: ViewerDep, vault: VaultDep, policy: str | None = None,
                table: str = "periods") -> Response:
    return csv_response(reviewing.report(vault, who.principal, policy or None), table)
