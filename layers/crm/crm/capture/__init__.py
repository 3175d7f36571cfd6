"""Capture: every submission (form, chat, partner webhook, API) becomes exactly one lead per email."""
