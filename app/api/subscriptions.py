"""Webhook subscriptions (Headwater's own API): who hears about incidents, and the log of what was delivered.
A webhook URL often is a credential (Slack's embed a token): with API keys set, reading them needs a read+write
key."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Response, status

from app.api.auth import require_read_write_key, require_write_key
from app.api.deps import EngineDep
from app.api.pagination import PageParams
from app.schemas.incidents import DeliveryList, Subscription, SubscriptionList, SubscriptionRequest
from app.services.incidents import subscriptions

router = APIRouter(prefix="/api/v1", tags=["subscriptions"])


@router.post(
    "/subscriptions",
    response_model=Subscription,
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe a webhook to incidents about or impacting namespaces, jobs, datasets or owners",
    dependencies=[Depends(require_write_key)],
)
def create_subscription(engine: EngineDep, request: SubscriptionRequest) -> Subscription:
    return subscriptions.create(engine, request)


@router.get(
    "/subscriptions",
    response_model=SubscriptionList,
    summary="Webhook subscriptions",
    dependencies=[Depends(require_read_write_key)],
)
def list_subscriptions(engine: EngineDep, page: PageParams) -> SubscriptionList:
    return subscriptions.list_subscriptions(engine, limit=page.limit, offset=page.offset)


@router.get(
    "/subscriptions/{subscriptionId}",
    response_model=Subscription,
    summary="A webhook subscription",
    dependencies=[Depends(require_read_write_key)],
)
def get_subscription(engine: EngineDep, subscriptionId: uuid.UUID) -> Subscription:
    return subscriptions.get(engine, subscriptionId)


@router.put(
    "/subscriptions/{subscriptionId}",
    response_model=Subscription,
    summary="Replace a subscription (leave out `secret` to keep the current one)",
    dependencies=[Depends(require_write_key)],
)
def replace_subscription(engine: EngineDep, subscriptionId: uuid.UUID, request: SubscriptionRequest) -> Subscription:
    return subscriptions.replace(engine, subscriptionId, request)


@router.delete(
    "/subscriptions/{subscriptionId}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a subscription and its delivery log",
    dependencies=[Depends(require_write_key)],
)
def delete_subscription(engine: EngineDep, subscriptionId: uuid.UUID) -> Response:
    subscriptions.remove(engine, subscriptionId)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/subscriptions/{subscriptionId}/deliveries",
    response_model=DeliveryList,
    summary="The delivery log of a subscription: each incident notification, its attempts and status codes",
    dependencies=[Depends(require_read_write_key)],
)
def list_deliveries(engine: EngineDep, subscriptionId: uuid.UUID, page: PageParams) -> DeliveryList:
    return subscriptions.deliveries(engine, subscriptionId, limit=page.limit, offset=page.offset)
