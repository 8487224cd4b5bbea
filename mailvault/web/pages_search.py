"""The search page (``/``): the query with its syntax help, the builder, results (newest,
oldest or largest first) with the total and pages, facets that refine the query, saved
searches, and a preview of the selected message beside the list."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from mailvault.errors import QueryError
from mailvault.usecases import finding, saved_searches
from mailvault.usecases.finding import SearchPage
from mailvault.web import query_builder
from mailvault.web.identity import FormViewerDep, VaultDep, ViewerDep, web_of
from mailvault.web.message_view import message_view

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
FACETS = (("year", "Year"), ("sender_domain", "Sender domain"), ("folder", "Folder"),
          ("tier", "Tier"))


def search_url(q: str, sort: str = "newest", page: int = 1, sel: int | None = None) -> str:
    """The search page's address for a query, order, page and selected message."""
    params: dict[str, str | int] = {"q": q}
    if sort != "newest":
        params["sort"] = sort
    if page > 1:
        params["page"] = page
    if sel is not None:
        params["sel"] = sel
    return "/?" + urlencode(params)


@router.get("/")
def search_page(request: Request, who: ViewerDep, vault: VaultDep,
                q: str = "", sort: str = "newest",
                page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                sel: int | None = None) -> Response:
    result: SearchPage | None = None
    problem = ""
    try:
        with web_of(request).metrics.timing_search("page"):
            result = finding.search(vault, who.principal, q, limit=PAGE_SIZE,
                                    offset=(page - 1) * PAGE_SIZE, order=sort,
                                    with_facets=True)
    except QueryError as exc:
        problem = str(exc)
    preview = None
    if sel is not None and result is not None:
        preview = message_view(vault, who.principal, str(sel))
    facet_links = _facet_links(q, sort, result)
    pages = _pages(q, sort, page, result)
    return web_of(request).templates.TemplateResponse(request, "search.html", {
        "viewer": who, "q": q, "sort": sort, "page": page, "result": result,
        "problem": problem, "facets": facet_links, "pages": pages, "preview": preview,
        "sel": sel, "orders": finding.SORT_ORDERS, "search_url": search_url,
        "saved": saved_searches.saved(vault, who.principal),
        "builder_fields": query_builder.BUILDER_FIELDS})


@router.get("/build")
def build(request: Request, who: ViewerDep, q: str = "") -> Response:
    """The builder's form (GET): its fields become query terms, and the search page shows
    the query they make."""
    params = request.query_params
    fields = {name: params.get(name, "") for name in query_builder.BUILDER_FIELDS}
    composed = query_builder.compose(fields, params.get("has") == "attachment", q)
    return RedirectResponse(search_url(composed, params.get("sort", "newest")),
                            status_code=303)


@router.get("/preview/{ref}")
def preview(request: Request, ref: str, who: ViewerDep, vault: VaultDep) -> Response:
    """The preview pane alone (loaded in place by the page's script)."""
    return web_of(request).templates.TemplateResponse(request, "_preview.html", {
        "viewer": who, "preview": message_view(vault, who.principal, ref)})


@router.post("/saved")
def save_search(who: FormViewerDep, vault: VaultDep, name: Annotated[str, Form()] = "",
                q: Annotated[str, Form()] = "") -> Response:
    saved_searches.save(vault, who.principal, name, q)
    return RedirectResponse(search_url(q), status_code=303)


@router.post("/saved/{search_id}/delete")
def delete_search(search_id: int, who: FormViewerDep, vault: VaultDep) -> Response:
    saved_searches.remove(vault, who.principal, search_id)
    return RedirectResponse("/", status_code=303)


def _facet_links(q: str, sort: str, result: SearchPage | None
                 ) -> list[tuple[str, list[tuple[str, int, str]]]]:
    """Each facet's title and its values as (label, count, link that refines the query)."""
    if result is None or result.facets is None:
        return []
    facets = result.facets
    values = {"year": facets.year, "sender_domain": facets.sender_domain,
              "folder": facets.folder, "tier": facets.tier}
    links = []
    for key, title in FACETS:
        items = [(value, count, search_url(
                  query_builder.refine(q, query_builder.facet_term(key, value)), sort))
                 for value, count in values[key]]
        links.append((title, items))
    attachment = [
        ("with", facets.with_attachment,
         search_url(query_builder.refine(q, query_builder.facet_term("attachment", "with")),
                    sort)),
        ("without", facets.total - facets.with_attachment,
         search_url(query_builder.refine(q, query_builder.facet_term("attachment",
                                                                     "without")), sort))]
    links.append(("Attachment", [a for a in attachment if a[1] > 0]))
    return links


def _pages(q: str, sort: str, page: int, result: SearchPage | None) -> dict[str, str]:
    if result is None:
        return {}
    links = {}
    if page > 1:
        links["previous"] = search_url(q, sort, page - 1)
    if page * PAGE_SIZE < result.total:
        links["next"] = search_url(q, sort, page + 1)
    return links

