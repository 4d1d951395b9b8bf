"""Two DAGs for the Airflow end-to-end check: one writes `room_bookings` with SQL, the other reads it and
writes `top_room_bookings`. The Postgres connection `warehouse` comes from AIRFLOW_CONN_WAREHOUSE. The scheduler
runs both for each day of the first week of November 2024 (catchup)."""

from datetime import datetime

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG

WEEK = {"start_date": datetime(2024, 11, 1), "end_date": datetime(2024, 11, 7), "schedule": "@daily", "catchup": True}

with DAG("bookings_etl", **WEEK):
    SQLExecuteQueryOperator(
        task_id="load_room_bookings",
        conn_id="warehouse",
        sql="INSERT INTO room_bookings (room, booked_on) SELECT room, booked_on FROM bookings "
        "WHERE booked_on = '{{ ds }}'",
    )

with DAG("top_rooms", **WEEK):
    SQLExecuteQueryOperator(
        task_id="build_top_room_bookings",
        conn_id="warehouse",
        sql="INSERT INTO top_room_bookings (room, bookings) SELECT room, count(*) FROM room_bookings GROUP BY room",
    )
