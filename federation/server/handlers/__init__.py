"""HTTP handlers, one module per resource: challenge-response sessions, the direct appraisal,
discovery (Veraison well-known document and JWKS) and operations (health, readiness, metrics)."""
