"""Datasets (Marquez API)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import Engine

from app.api.deps import get_engine
from app.api.pagination import PageParams
from app.schemas.marquez import Dataset, DatasetList
from app.services import datasets

router = APIRouter(prefix="/api/v1/namespaces/{namespace:name}", tags=["datasets"])
EngineDep = Annotated[Engine, Depends(get_engine)]


@router.get("/datasets", response_model=DatasetList, summary="List a namespace's datasets")
def list_datasets(namespace: str, engine: EngineDep, page: PageParams) -> DatasetList:
    found, total = datasets.list_datasets(engine, namespace, limit=page.limit, offset=page.offset)
    return DatasetList(datasets=found, totalCount=total)


@router.get("/datasets/{dataset:name}", response_model=Dataset, summary="Get a dataset")
def get_dataset(namespace: str, dataset: str, engine: EngineDep) -> Dataset:
    return datasets.get_dataset(engine, namespace, dataset)
