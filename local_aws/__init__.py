"""The embedded local AWS endpoint of fastier.platform.

moto in server mode, extended with:

* an Elastic Beanstalk backend that follows the AWS API reference
  (``local_aws.eb``), because moto's own is a stub;
* RDS instances backed by a real PostgreSQL cluster on loopback
  (``local_aws.rds``), so cut-overs and restores move real rows;
* a small control interface outside the AWS API under ``/_local/`` that tests
  use to inspect state and inject faults (``local_aws.control``).

Everything binds to loopback only. Start it with ``make local-up`` or
``python -m local_aws up``; see ``python -m local_aws --help``.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
