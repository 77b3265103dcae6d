"""Loopback imitations of the model providers' APIs, speaking their real request and response
JSON (usage fields, error bodies, quirks included), one module per provider."""
