"""Billing and insurance exchange: charges from completed appointments, claims
(X12 837P) and remittances (835) through a drop-folder clearinghouse,
eligibility (270/271), self-pay invoices."""
