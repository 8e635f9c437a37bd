"""Dosing review: treatment plans, their status machine and treatment holds."""
