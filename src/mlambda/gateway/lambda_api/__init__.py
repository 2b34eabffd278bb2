"""AWS Lambda's own API (botocore's paths, shapes and errors): Invoke, the management
operations, the function URL config; ``operations`` names the ones not served."""
