"""Scoring: rules as data, the engine and its ledger, rescoring and decay, behavioural activities."""
