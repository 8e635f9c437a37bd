"""Delivery of engagement's notifications: templates, quiet hours, channels, adapters, the sender loop.

The engagement service is the only one that talks to people (ADR 0017). What it says carries no
clinical detail (templates.py); whom it says it to is fetched at send time and forgotten
(contacts.py: intake's contact route for patients, the staff directory for staff); each
notification is one row (tables.py) written in the transaction of the event that caused it
(enqueue.py) and sent after commit by the sender loop (sender.py) through an adapter
(adapters.py: SMTP for email, a REST provider or an email-to-SMS gateway for SMS).
"""
