"""Billing and insurance exchange.

For now it records the plan and review events it will bill from (charges and
claims come with the billing issue).
"""
