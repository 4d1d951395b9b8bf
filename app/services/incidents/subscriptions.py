"""Webhook subscriptions (CRUD, which incidents each one hears about) and their delivery log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Engine, Row, delete, func, select, update

from app.db import tables as t
from app.db.engine import read_connection, write_transaction
from app.schemas.backfill import NodeRef
from app.schemas.incidents import (
    Delivery,
    DeliveryList,
    IncidentImpact,
    Subscription,
    SubscriptionList,
    SubscriptionRequest,
)
from app.services.errors import NotFound


def _wire(row: Row) -> Subscription:
    return Subscription(
        id=str(row.id),
        url=row.url,
        hasSecret=bool(row.secret),
        description=row.description,
        namespaces=row.namespaces,
        jobs=[NodeRef.model_validate(j) for j in row.jobs],
        datasets=[NodeRef.model_validate(d) for d in row.datasets],
        owners=row.owners,
        kinds=row.kinds,
        createdAt=row.created_at,
        updatedAt=row.updated_at,
    )


def _values(request: SubscriptionRequest) -> dict:
    return {
        "url": request.url,
        "description": request.description,
        "namespaces": sorted(set(request.namespaces)),
        "jobs": [j.model_dump() for j in request.jobs],
        "datasets": [d.model_dump() for d in request.datasets],
        "owners": sorted(set(request.owners)),
        "kinds": sorted(set(request.kinds)),
    }


def create(engine: Engine, request: SubscriptionRequest) -> Subscription:
    now = datetime.now(UTC)
    subscription_id = uuid.uuid4()
    with write_transaction(engine) as conn:
        conn.execute(
            t.subscriptions.insert().values(
                id=subscription_id, secret=request.secret, created_at=now, updated_at=now, **_values(request)
            )
        )
    return get(engine, subscription_id)


def replace(engine: Engine, subscription_id: uuid.UUID, request: SubscriptionRequest) -> Subscription:
    values = {**_values(request), "updated_at": datetime.now(UTC)}
    if request.secret is not None:  # write-only: leaving it out keeps the current one
        values["secret"] = request.secret
    with write_transaction(engine) as conn:
        s = t.subscriptions.c
        if not conn.execute(update(t.subscriptions).where(s.id == subscription_id).values(**values)).rowcount:
            raise NotFound(f"Subscription '{subscription_id}' not found.")
    return get(engine, subscription_id)


def remove(engine: Engine, subscription_id: uuid.UUID) -> None:
    with write_transaction(engine) as conn:
        if not conn.execute(delete(t.subscriptions).where(t.subscriptions.c.id == subscription_id)).rowcount:
            raise NotFound(f"Subscription '{subscription_id}' not found.")


def get(engine: Engine, subscription_id: uuid.UUID) -> Subscription:
    with read_connection(engine) as conn:
        row = conn.execute(select(t.subscriptions).where(t.subscriptions.c.id == subscription_id)).first()
    if row is None:
        raise NotFound(f"Subscription '{subscription_id}' not found.")
    return _wire(row)


def list_subscriptions(engine: Engine, *, limit: int, offset: int) -> SubscriptionList:
    s = t.subscriptions.c
    with read_connection(engine) as conn:
        total = conn.execute(select(func.count()).select_from(t.subscriptions)).scalar_one()
        rows = conn.execute(select(t.subscriptions).order_by(s.created_at, s.id).limit(limit).offset(offset)).all()
    return SubscriptionList(subscriptions=[_wire(r) for r in rows], totalCount=total)


def deliveries(engine: Engine, subscription_id: uuid.UUID, *, limit: int, offset: int) -> DeliveryList:
    get(engine, subscription_id)
    w = t.webhook_deliveries.c
    with read_connection(engine) as conn:
        where = w.subscription_id == subscription_id
        total = conn.execute(select(func.count()).select_from(t.webhook_deliveries).where(where)).scalar_one()
        rows = conn.execute(
            select(t.webhook_deliveries).where(where).order_by(w.created_at.desc(), w.id).limit(limit).offset(offset)
        ).all()
    return DeliveryList(
        deliveries=[
            Delivery(
                id=str(r.id),
                subscriptionId=str(r.subscription_id),
                incidentId=str(r.incident_id),
                event=r.event,
                status=r.status,
                attempts=r.attempts,
                lastStatusCode=r.last_status_code,
                lastError=r.last_error,
                history=r.history,
                createdAt=r.created_at,
                nextAttemptAt=r.next_attempt_at if r.status == "pending" else None,
                deliveredAt=r.delivered_at,
            )
            for r in rows
        ],
        totalCount=total,
    )


def matches(subscription: Row, incident: Row, impact: IncidentImpact | None) -> bool:
    """Does the subscription hear about the incident: its kind, and its subject or anything downstream of it
    (jobs, datasets, their namespaces and owners) is subscribed to."""
    if subscription.kinds and incident.kind not in subscription.kinds:
        return False
    jobs = {(incident.job_namespace, incident.job_name)} if incident.job_name else set()
    datasets = {(incident.dataset_namespace, incident.dataset_name)} if incident.dataset_name else set()
    datasets |= {(d["namespace"], d["name"]) for d in (incident.details.get("lateDatasets") or [])}
    owners: set[str] = set()
    if impact is not None:
        jobs |= {(j.job.namespace, j.job.name) for j in impact.jobs}
        datasets |= {(d.dataset.namespace, d.dataset.name) for d in impact.datasets}
        owners |= set(impact.owners) | set(impact.subjectOwners)
    namespaces = {incident.namespace} | {ns for ns, _ in jobs} | {ns for ns, _ in datasets}
    return bool(
        namespaces & set(subscription.namespaces)
        or jobs & {(j["namespace"], j["name"]) for j in subscription.jobs}
        or datasets & {(d["namespace"], d["name"]) for d in subscription.datasets}
        or owners & set(subscription.owners)
    )
