"""Pipeline stages: pure functions over Arrow tables. No Prefect imports here."""
