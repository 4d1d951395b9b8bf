"""``headwater incidents list`` and ``headwater subscriptions add|list|remove|deliveries``: on the local database,
or through a running server's API with --server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from app.cli.server_api import request_server
from app.schemas.backfill import NodeRef
from app.schemas.incidents import DeliveryList, IncidentList, Subscription, SubscriptionList, SubscriptionRequest
from app.services.lineage import split_qualified_name

incidents_cli = typer.Typer(help="Incidents: failed runs, failed quality checks, late data, breaking schema changes.",
                            no_args_is_help=True)  # fmt: skip
subscriptions_cli = typer.Typer(help="Webhooks that hear about incidents.", no_args_is_help=True)

Model = TypeVar("Model", bound=BaseModel)

SERVER = typer.Option(None, "--server", envvar="HEADWATER_URL", help="Use a running server (http://localhost:5000).")
API_KEY = typer.Option(None, "--api-key", envvar="HEADWATER_API_KEY", help="API key for --server.")


class Format(StrEnum):
    table = "table"
    json = "json"


def _call(
    server: str | None,
    api_key: str | None,
    local: Callable[[Any], Any],
    method: str,
    path: str,
    model: type[Model] | None,
    **request: Any,
) -> Model | None:
    """Run ``local(engine)`` on the local database, or the same request against ``server``."""
    if server is None:
        from app.cli.local_database import caught_up_engine
        from app.services.errors import InvalidRequest, NotFound

        with caught_up_engine() as engine:
            try:
                return local(engine)
            except (NotFound, InvalidRequest) as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from None
    response = request_server(server, api_key, method, path, **request)
    return model.model_validate(response.json()) if model else None


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


@incidents_cli.command("list")
def list_command(
    status: str = typer.Option(None, "--status", help="open or resolved."),
    namespace: str = typer.Option(None, "--namespace", help="Namespace of the job or dataset it is about."),
    kind: str = typer.Option(None, "--kind", help="run_failed, data_quality, late or schema_change."),
    limit: int = typer.Option(100, "--limit", min=0),
    offset: int = typer.Option(0, "--offset", min=0),
    output: Format = typer.Option(Format.table, "--format", help="table or json."),
    server: str = SERVER,
    api_key: str = API_KEY,
) -> None:
    """Incidents, newest first."""
    if status not in (None, "open", "resolved"):
        raise typer.BadParameter("open or resolved", param_hint="--status")
    from app.schemas.incidents import INCIDENT_KINDS

    if kind is not None and kind not in INCIDENT_KINDS:
        raise typer.BadParameter(", ".join(INCIDENT_KINDS), param_hint="--kind")

    def local(engine):
        from app.services.incidents import service

        return service.list_incidents(engine, status=status, namespace=namespace, kind=kind, limit=limit, offset=offset)

    params = {k: v for k, v in {"status": status, "namespace": namespace, "kind": kind}.items() if v}
    found = _call(server, api_key, local, "GET", "/api/v1/incidents", IncidentList,
                  params={**params, "limit": limit, "offset": offset})  # fmt: skip
    assert found is not None
    if output is Format.json:
        typer.echo(json.dumps(found.model_dump(mode="json"), indent=2))
        return
    if not found.incidents:
        typer.echo("No incidents.")
        return
    for incident in found.incidents:
        state = incident.status.upper() if incident.status == "open" else f"resolved {_when(incident.resolvedAt)}"
        typer.echo(f"{_when(incident.openedAt)}  {state:<8}  {incident.kind:<13}  {incident.title}")
        if incident.impact is not None and (incident.impact.jobs or incident.impact.owners):
            owners = f"; owners: {', '.join(incident.impact.owners)}" if incident.impact.owners else ""
            typer.echo(f"{'':>17}  downstream: {incident.impact.totals.jobs} jobs{owners}")
        typer.echo(f"{'':>17}  id {incident.id}; backfill: {incident.backfill.url}")
    typer.echo(f"{len(found.incidents)} of {found.totalCount}")


def _refs(option: str, values: list[str] | None) -> list[NodeRef]:
    refs = []
    for text in values or []:
        try:
            namespace, name = split_qualified_name(text)
        except ValueError as exc:
            raise typer.BadParameter(f"{exc} (expected <namespace>:<name>)", param_hint=option) from None
        refs.append(NodeRef(namespace=namespace, name=name))
    return refs


@subscriptions_cli.command("add")
def add_command(
    url: str = typer.Option(..., "--url", help="http(s) URL that receives the JSON POSTs (e.g. a Slack webhook)."),
    secret: str = typer.Option(None, "--secret", envvar="HEADWATER_WEBHOOK_SECRET", help="Signing key (whsec_…)."),
    namespace: list[str] = typer.Option(None, "--namespace", help="A namespace (repeatable)."),
    job: list[str] = typer.Option(None, "--job", help="A job as <namespace>:<name> (repeatable)."),
    dataset: list[str] = typer.Option(None, "--dataset", help="A dataset as <namespace>:<name> (repeatable)."),
    owner: list[str] = typer.Option(None, "--owner", help="An owner, e.g. team-analytics (repeatable)."),
    kind: list[str] = typer.Option(None, "--kind", help="Only this incident kind (repeatable)."),
    description: str = typer.Option(None, "--description"),
    server: str = SERVER,
    api_key: str = API_KEY,
) -> None:
    """Subscribe a webhook to incidents about, or downstream impact on, these namespaces, jobs, datasets, owners."""
    try:
        request = SubscriptionRequest(
            url=url,
            secret=secret,
            description=description,
            namespaces=namespace or [],
            jobs=_refs("--job", job),
            datasets=_refs("--dataset", dataset),
            owners=owner or [],
            kinds=kind or [],
        )
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None

    def local(engine):
        from app.services.incidents import subscriptions

        return subscriptions.create(engine, request)

    created = _call(server, api_key, local, "POST", "/api/v1/subscriptions", Subscription,
                    json=request.model_dump(mode="json"))  # fmt: skip
    assert created is not None
    typer.echo(f"subscription {created.id} → {created.url}" + (" (signed)" if created.hasSecret else ""))


@subscriptions_cli.command("list")
def subscriptions_command(server: str = SERVER, api_key: str = API_KEY) -> None:
    """Webhook subscriptions."""

    def local(engine):
        from app.services.incidents import subscriptions

        return subscriptions.list_subscriptions(engine, limit=1000, offset=0)

    found = _call(server, api_key, local, "GET", "/api/v1/subscriptions", SubscriptionList, params={"limit": 1000})
    assert found is not None
    for s in found.subscriptions:
        what = [*s.namespaces, *(f"{j.namespace}:{j.name}" for j in s.jobs),
                *(f"{d.namespace}:{d.name}" for d in s.datasets), *(f"owner {o}" for o in s.owners)]  # fmt: skip
        kinds = f" [{', '.join(s.kinds)}]" if s.kinds else ""
        typer.echo(f"{s.id}  {s.url}{kinds}  ← {', '.join(what)}")
    if not found.subscriptions:
        typer.echo("No subscriptions.")


@subscriptions_cli.command("remove")
def remove_command(subscription_id: uuid.UUID, server: str = SERVER, api_key: str = API_KEY) -> None:
    """Delete a subscription and its delivery log."""

    def local(engine):
        from app.services.incidents import subscriptions

        subscriptions.remove(engine, subscription_id)

    _call(server, api_key, local, "DELETE", f"/api/v1/subscriptions/{subscription_id}", None)
    typer.echo(f"subscription {subscription_id} removed")


@subscriptions_cli.command("deliveries")
def deliveries_command(subscription_id: uuid.UUID, server: str = SERVER, api_key: str = API_KEY) -> None:
    """The delivery log of a subscription: what was sent, how often it was tried, what the receiver answered."""

    def local(engine):
        from app.services.incidents import subscriptions

        return subscriptions.deliveries(engine, subscription_id, limit=1000, offset=0)

    path = f"/api/v1/subscriptions/{subscription_id}/deliveries"
    found = _call(server, api_key, local, "GET", path, DeliveryList, params={"limit": 1000})
    assert found is not None
    for d in found.deliveries:
        code = d.lastStatusCode if d.lastStatusCode is not None else "-"
        typer.echo(f"{_when(d.createdAt)}  {d.event:<17}  {d.status:<9}  attempts {d.attempts}  last {code}"
                   f"  incident {d.incidentId}")  # fmt: skip
    if not found.deliveries:
        typer.echo("No deliveries.")
