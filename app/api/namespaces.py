"""Namespaces (Marquez API)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.api.auth import require_write_key
from app.api.deps import EngineDep
from app.api.pagination import PageParams
from app.api.paths import WrittenName
from app.schemas.marquez import CreatedNamespace, Namespace, NamespaceList
from app.services import namespaces

router = APIRouter(prefix="/api/v1", tags=["namespaces"])


@router.get("/namespaces", response_model=NamespaceList, summary="List namespaces")
def list_namespaces(engine: EngineDep, page: PageParams) -> NamespaceList:
    return NamespaceList(namespaces=namespaces.list_namespaces(engine, limit=page.limit, offset=page.offset))


@router.get("/namespaces/{namespace:name}", response_model=Namespace, summary="Get a namespace")
def get_namespace(namespace: str, engine: EngineDep) -> Namespace:
    return namespaces.get_namespace(engine, namespace)


@router.put(
    "/namespaces/{namespace:name}",
    response_model=Namespace,
    summary="Create or update a namespace",
    dependencies=[Depends(require_write_key)],
)
def put_namespace(namespace: WrittenName, body: CreatedNamespace, engine: EngineDep) -> Namespace:
    return namespaces.put_namespace(engine, namespace, body)


@router.delete(
    "/namespaces/{namespace:name}",
    response_model=Namespace,
    summary="Soft-delete a namespace and its jobs and datasets",
    dependencies=[Depends(require_write_key)],
)
def delete_namespace(namespace: str, engine: EngineDep) -> Namespace:
    return namespaces.delete_namespace(engine, namespace)
