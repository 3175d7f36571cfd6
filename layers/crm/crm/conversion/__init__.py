"""Conversion of a qualified lead into a contact, a company and a deal, in one transaction."""
