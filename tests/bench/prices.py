"""Public list prices the cost benchmark (`tests/bench/cost.py`) turns its counts into dollars with:
us-east-1, on-demand, no free tier, in one place. Change them here (and the date) when AWS changes them."""

from decimal import Decimal

# aws.amazon.com/<service>/pricing, us-east-1; the date of DynamoDB's on-demand price cut, the newest change.
PRICES_AS_OF = "2024-11-01"
REGION = "us-east-1"

DYNAMODB_PER_MILLION_WRITE_UNITS = Decimal("0.625")  # on-demand write request units (1 KB; transactions 2x)
DYNAMODB_PER_MILLION_READ_UNITS = Decimal("0.125")  # on-demand read request units (4 KB; eventual 0.5)
LAMBDA_ARM64_PER_GB_SECOND = Decimal("0.0000133334")
LAMBDA_PER_MILLION_REQUESTS = Decimal("0.20")
SQS_STANDARD_PER_MILLION_REQUESTS = Decimal("0.40")  # each 64 KB chunk of a request is one request
EVENTBRIDGE_PER_MILLION_EVENTS = Decimal("1.00")  # custom events put (PutEvents entries); AWS events free
SCHEDULER_PER_MILLION_INVOCATIONS = Decimal("1.00")  # EventBridge Scheduler schedule invocations
SES_PER_THOUSAND_EMAILS = Decimal("0.10")
HTTP_API_PER_MILLION_REQUESTS = Decimal("1.00")  # API Gateway HTTP APIs, first 300 million a month
SECRETS_MANAGER_PER_10K_CALLS = Decimal("0.05")
SSM_STANDARD_PARAMETER_CALL = Decimal("0")  # standard parameters, standard throughput: no charge per call
