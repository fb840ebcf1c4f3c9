"""A local stand-in for the four vendor APIs, the way moto or LocalStack stand in for AWS.

Run it with ``python -m airflow_provider_userattrs.sandbox`` (or ``userattrs-sandbox``); point a
connection's host at it with the password ``sandbox-token``. See README.md, "The vendor sandbox".
"""

from airflow_provider_userattrs.sandbox.client import SandboxClient
from airflow_provider_userattrs.sandbox.server import SandboxServer
from airflow_provider_userattrs.sandbox.state import Faults

DEFAULT_TOKEN = "sandbox-token"
DEFAULT_FYNO_WORKSPACE = "sandboxwsid"

__all__ = ["DEFAULT_FYNO_WORKSPACE", "DEFAULT_TOKEN", "Faults", "SandboxClient", "SandboxServer"]
