"""budget-recon: reconcile budget ledgers against allocation notices (分配下达通知对账)."""

__version__ = "0.1.0"
