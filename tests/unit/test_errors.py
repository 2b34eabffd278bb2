"""The error tree: each class's status, errorType and exit code, and the client's rebuild."""

from __future__ import annotations

import pytest

from mlambda import errors
from mlambda.errors import (
    ArtifactCorrupted,
    ClientError,
    ConnectionFailed,
    ExitError,
    FunctionError,
    FunctionNotFound,
    FunctionTimeout,
    InitError,
    InvalidRequest,
    InvalidSpec,
    MlambdaError,
    PayloadTooLarge,
    ServiceUnavailable,
    Throttled,
    Unauthorized,
)


@pytest.mark.parametrize(
    ("cls", "status", "error_type", "exit_code"),
    [
        (MlambdaError, 500, "ServiceException", 1),
        (ClientError, 400, "InvalidRequestContentException", 2),
        (InvalidRequest, 400, "InvalidRequestContentException", 2),
        (InvalidSpec, 400, "InvalidParameterValueException", 2),
        (Unauthorized, 401, "UnauthorizedException", 5),
        (FunctionNotFound, 404, "ResourceNotFoundException", 4),
        (PayloadTooLarge, 413, "RequestTooLargeException", 2),
        (Throttled, 429, "TooManyRequestsException", 6),
        (FunctionError, 502, "Unhandled", 3),
        (InitError, 502, "Unhandled", 3),
        (ExitError, 502, "Unhandled", 3),
        (FunctionTimeout, 504, "Unhandled", 3),
        (ArtifactCorrupted, 500, "ArtifactCorruptedException", 1),
        (ServiceUnavailable, 503, "ServiceUnavailableException", 1),
        (ConnectionFailed, 500, "ServiceException", 7),
    ],
)
def test_each_class_knows_its_status_error_type_and_exit_code(cls, status, error_type, exit_code):
    assert (cls.status, cls.error_type, cls.exit_code) == (status, error_type, exit_code)


@pytest.mark.parametrize(
    "cls", [InvalidRequest, InvalidSpec, Unauthorized, FunctionNotFound, PayloadTooLarge, Throttled]
)
def test_client_errors_are_client_errors(cls):
    assert issubclass(cls, ClientError)
    assert issubclass(cls, MlambdaError)


@pytest.mark.parametrize("cls", [InitError, ExitError, FunctionTimeout])
def test_function_failures_are_function_errors(cls):
    assert issubclass(cls, FunctionError)


def test_to_body_is_lambdas_error_payload():
    error = FunctionNotFound("no function 'echo'")
    assert error.to_body() == {
        "errorType": "ResourceNotFoundException",
        "errorMessage": "no function 'echo'",
    }


def test_an_error_type_given_to_one_error_does_not_change_its_class():
    error = MlambdaError("boom", error_type="Custom")
    assert error.error_type == "Custom"
    assert MlambdaError.error_type == "ServiceException"
    assert MlambdaError("again").error_type == "ServiceException"


def test_a_function_error_carries_the_functions_payload():
    payload = {"errorType": "ValueError", "errorMessage": "bad input", "stackTrace": ["x"]}
    error = FunctionError(payload)
    assert error.error_type == "ValueError"
    assert error.message == "bad input"
    assert error.to_body() is payload


def test_a_function_error_without_type_or_message_gets_defaults():
    error = FunctionError({})
    assert (error.error_type, error.message) == ("Error", "")


@pytest.mark.parametrize(
    "cls",
    [
        InvalidRequest,
        InvalidSpec,
        Unauthorized,
        FunctionNotFound,
        PayloadTooLarge,
        Throttled,
        ArtifactCorrupted,
        ServiceUnavailable,
    ],
)
def test_from_response_rebuilds_the_class_for_each_error_type(cls):
    sent = cls("what went wrong")
    rebuilt = errors.from_response(cls.status, sent.to_body(), function_error=False)
    assert type(rebuilt) is cls
    assert rebuilt.message == "what went wrong"
    assert rebuilt.status == cls.status
    assert rebuilt.to_body() == sent.to_body()


@pytest.mark.parametrize(
    ("status", "cls"),
    [(502, FunctionError), (504, FunctionTimeout)],
)
def test_from_response_rebuilds_function_errors_by_status(status, cls):
    payload = {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 1.00 seconds"}
    rebuilt = errors.from_response(status, payload, function_error=True)
    assert type(rebuilt) is cls
    assert rebuilt.to_body() == payload
    assert rebuilt.error_type == "Sandbox.Timedout"
    assert rebuilt.exit_code == 3


def test_from_response_keeps_an_unknown_error_type_on_the_base_class():
    rebuilt = errors.from_response(500, {"errorType": "Weird", "errorMessage": "?"}, False)
    assert type(rebuilt) is MlambdaError
    assert rebuilt.error_type == "Weird"
    assert rebuilt.message == "?"


def test_from_response_without_a_body_falls_back_to_service_exception_and_the_status():
    rebuilt = errors.from_response(503, {}, function_error=False)
    assert type(rebuilt) is MlambdaError
    assert rebuilt.error_type == "ServiceException"
    assert rebuilt.message == "HTTP 503"


def test_from_response_with_only_a_message_keeps_it():
    rebuilt = errors.from_response(404, {"errorType": "ResourceNotFoundException"}, False)
    assert type(rebuilt) is FunctionNotFound
    assert rebuilt.message == "HTTP 404"
