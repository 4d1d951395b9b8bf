"""Datasets (Marquez API)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends

from app.api.auth import require_write_key
from app.api.deps import EngineDep
from app.api.pagination import PageParams
from app.api.paths import WrittenName
from app.schemas.marquez import CreatedDataset, Dataset, DatasetList, DatasetVersion, DatasetVersionList
from app.services import datasets, legacy

router = APIRouter(prefix="/api/v1/namespaces/{namespace:name}", tags=["datasets"])


@router.get("/datasets", response_model=DatasetList, summary="List a namespace's datasets")
def list_datasets(namespace: str, engine: EngineDep, page: PageParams) -> DatasetList:
    found, total = datasets.list_datasets(engine, namespace, limit=page.limit, offset=page.offset)
    return DatasetList(datasets=found, totalCount=total)


@router.get("/datasets/{dataset:name}", response_model=Dataset, summary="Get a dataset")
def get_dataset(namespace: str, dataset: str, engine: EngineDep) -> Dataset:
    return datasets.get_dataset(engine, namespace, dataset)


@router.get(
    "/datasets/{dataset:name}/versions",
    response_model=DatasetVersionList,
    summary="List a dataset's versions, newest first",
)
def list_dataset_versions(namespace: str, dataset: str, engine: EngineDep, page: PageParams) -> DatasetVersionList:
    found, total = datasets.list_versions(engine, namespace, dataset, limit=page.limit, offset=page.offset)
    return DatasetVersionList(versions=found, totalCount=total)


@router.get(
    "/datasets/{dataset:name}/versions/{version}", response_model=DatasetVersion, summary="Get a dataset version"
)
def get_dataset_version(namespace: str, dataset: str, version: uuid.UUID, engine: EngineDep) -> DatasetVersion:
    return datasets.get_version(engine, namespace, dataset, version)


@router.put(
    "/datasets/{dataset:name}",
    response_model=Dataset,
    summary="Create or update a dataset and make a new version of it (deprecated in Marquez: use OpenLineage)",
    dependencies=[Depends(require_write_key)],
)
def put_dataset(namespace: WrittenName, dataset: WrittenName, body: CreatedDataset, engine: EngineDep) -> Dataset:
    return legacy.put_dataset(engine, namespace, dataset, body)


@router.delete(
    "/datasets/{dataset:name}",
    response_model=Dataset,
    summary="Soft-delete a dataset (hidden until an event names it again)",
    dependencies=[Depends(require_write_key)],
)
def delete_dataset(namespace: str, dataset: str, engine: EngineDep) -> Dataset:
    return datasets.delete_dataset(engine, namespace, dataset)


# Tags: POST adds one, DELETE removes it; both answer with the dataset, as Marquez does.
WriteKey = [Depends(require_write_key)]


@router.post(
    "/datasets/{dataset:name}/tags/{tag:name}", response_model=Dataset, summary="Tag a dataset", dependencies=WriteKey
)
def tag_dataset(namespace: str, dataset: str, tag: str, engine: EngineDep) -> Dataset:
    return datasets.set_dataset_tag(engine, namespace, dataset, tag, present=True)


@router.delete(
    "/datasets/{dataset:name}/tags/{tag:name}", response_model=Dataset, summary="Untag a dataset", dependencies=WriteKey
)
def untag_dataset(namespace: str, dataset: str, tag: str, engine: EngineDep) -> Dataset:
    return datasets.set_dataset_tag(engine, namespace, dataset, tag, present=False)


@router.post(
    "/datasets/{dataset:name}/fields/{field:name}/tags/{tag:name}",
    response_model=Dataset,
    summary="Tag a dataset field",
    dependencies=WriteKey,
)
def tag_field(namespace: str, dataset: str, field: str, tag: str, engine: EngineDep) -> Dataset:
    return datasets.set_field_tag(engine, namespace, dataset, field, tag, present=True)


@router.delete(
    "/datasets/{dataset:name}/fields/{field:name}/tags/{tag:name}",
    response_model=Dataset,
    summary="Untag a dataset field",
    dependencies=WriteKey,
)
def untag_field(namespace: str, dataset: str, field: str, tag: str, engine: EngineDep) -> Dataset:
    return datasets.set_field_tag(engine, namespace, dataset, field, tag, present=False)
