"""Tags are the part of a Marquez's state that its users set through the REST API and no event carries: copy
them (the tag definitions, and the tags on datasets, fields and jobs) from a running Marquez onto the datasets,
fields and jobs that Headwater has, after their events were imported. Idempotent: a tag already on its
dataset, field or job stays as it is."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
from sqlalchemy import Engine

from app.services import datasets, jobs, tags
from app.services.errors import JobMoved, NotFound
from app.services.transfer.sources import SourceError

_PAGE = 100


@dataclass
class TagCopyReport:
    defined: int = 0  # tag definitions (name, description) put
    dataset_tags: int = 0
    field_tags: int = 0
    job_tags: int = 0
    not_in_headwater: list[str] = field(default_factory=list)  # what Marquez tags that Headwater lacks


def copy_marquez_tags(engine: Engine, client: httpx.Client, namespaces: frozenset[str] = frozenset()) -> TagCopyReport:
    report = TagCopyReport()
    for tag in _pages(client, "/api/v1/tags", "tags"):
        tags.put_tag(engine, tag["name"], tag.get("description"))
        report.defined += 1
    for namespace in _pages(client, "/api/v1/namespaces", "namespaces"):
        ns = namespace["name"]
        if namespaces and ns not in namespaces:
            continue
        for dataset in _pages(client, f"/api/v1/namespaces/{quote(ns, safe='')}/datasets", "datasets"):
            name = dataset["name"]
            for tag in dataset.get("tags") or ():
                if _put(report, f"dataset {ns}:{name}", datasets.set_dataset_tag, engine, ns, name, tag):
                    report.dataset_tags += 1
            for column in dataset.get("fields") or ():
                for tag in column.get("tags") or ():
                    what = f"field {ns}:{name}.{column['name']}"
                    if _put(report, what, datasets.set_field_tag, engine, ns, name, column["name"], tag):
                        report.field_tags += 1
        for job in _pages(client, f"/api/v1/namespaces/{quote(ns, safe='')}/jobs", "jobs"):
            for tag in job.get("tags") or ():
                if _put(report, f"job {ns}:{job['name']}", jobs.set_job_tag, engine, ns, job["name"], tag):
                    report.job_tags += 1
    return report


def _put(report: TagCopyReport, what: str, setter, *args) -> bool:
    try:
        setter(*args, present=True)
    except (NotFound, JobMoved):
        report.not_in_headwater.append(what)
        return False
    return True


def _pages(client: httpx.Client, path: str, key: str) -> Iterator[dict]:
    offset = 0
    while True:
        try:
            response = client.get(path, params={"limit": _PAGE, "offset": offset})
        except httpx.HTTPError as exc:
            raise SourceError(f"{client.base_url}{path}: {exc}") from exc
        if response.status_code != 200:
            raise SourceError(f"GET {client.base_url}{path} answered {response.status_code}: {response.text[:300]}")
        items = response.json().get(key) or []
        yield from items
        if len(items) < _PAGE:
            return
        offset += len(items)
