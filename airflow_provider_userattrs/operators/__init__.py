"""The two operators users put in their DAGs; the vendor is chosen by the connection's type."""

from airflow_provider_userattrs.operators.mass_update import MassUpdateOperator
from airflow_provider_userattrs.operators.update import UpdateUserAttributesOperator

__all__ = ["MassUpdateOperator", "UpdateUserAttributesOperator"]
