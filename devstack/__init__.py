"""The local stack: template.yaml run on one machine (DynamoDB Local, moto, Lambda-like workers, HTTP API)."""
