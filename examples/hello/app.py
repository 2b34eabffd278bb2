"""The smallest mlambda function: handler(event, context), as on AWS Lambda."""

import os

GREETING = os.environ.get("GREETING", "Hello")


def handler(event, context):
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    return {"message": f"{GREETING}, {name}!", "request_id": context.aws_request_id}
