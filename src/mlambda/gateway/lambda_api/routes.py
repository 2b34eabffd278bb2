"""The Lambda API's routes, at botocore's paths (each date prefix is the API version botocore
sends for that operation)."""

from __future__ import annotations

from starlette.routing import Route

from mlambda.gateway import event_config
from mlambda.gateway.lambda_api import aliases, code, concurrency, functions, invoke, urls

F = "/2015-03-31/functions"
FN = f"{F}/{{name}}"
URL = "/2021-10-31/functions/{name}/url"
EIC = "/2019-09-25/functions/{name}/event-invoke-config"
RESERVED = "/2017-10-31/functions/{name}/concurrency"
PROVISIONED = "/2019-09-30/functions/{name}/provisioned-concurrency"


def routes() -> list[Route]:
    return [
        Route(f"{FN}/invocations", invoke.invoke, methods=["POST"]),
        Route(F, functions.list_functions, methods=["GET"]),
        Route(F, functions.create_function, methods=["POST"]),
        Route(FN, functions.get_function, methods=["GET"]),
        Route(FN, functions.delete_function, methods=["DELETE"]),
        Route(f"{FN}/configuration", functions.get_function_configuration, methods=["GET"]),
        Route(f"{FN}/configuration", functions.update_function_configuration, methods=["PUT"]),
        Route(f"{FN}/code", functions.update_function_code, methods=["PUT"]),
        Route(f"{FN}/versions", aliases.list_versions, methods=["GET"]),
        Route(f"{FN}/versions", aliases.publish_version, methods=["POST"]),
        Route(f"{FN}/aliases", aliases.list_aliases, methods=["GET"]),
        Route(f"{FN}/aliases", aliases.create_alias, methods=["POST"]),
        Route(f"{FN}/aliases/{{alias}}", aliases.get_alias, methods=["GET"]),
        Route(f"{FN}/aliases/{{alias}}", aliases.update_alias, methods=["PUT"]),
        Route(f"{FN}/aliases/{{alias}}", aliases.delete_alias, methods=["DELETE"]),
        Route(URL, urls.get_url_config, methods=["GET"]),
        Route(URL, urls.create_url_config, methods=["POST"]),
        Route(URL, urls.update_url_config, methods=["PUT"]),
        Route(URL, urls.delete_url_config, methods=["DELETE"]),
        Route("/2016-08-19/account-settings", functions.get_account_settings, methods=["GET"]),
        Route(EIC, event_config.event_invoke_config, methods=["GET", "PUT", "POST", "DELETE"]),
        Route(f"{EIC}/list", event_config.list_event_invoke_configs, methods=["GET"]),
        Route(RESERVED, concurrency.put_function_concurrency, methods=["PUT"]),
        Route(RESERVED, concurrency.delete_function_concurrency, methods=["DELETE"]),
        Route(
            "/2019-09-30/functions/{name}/concurrency",
            concurrency.get_function_concurrency,
            methods=["GET"],
        ),
        Route(PROVISIONED, concurrency.put_provisioned, methods=["PUT"]),
        Route(PROVISIONED, concurrency.get_provisioned, methods=["GET"]),
        Route(PROVISIONED, concurrency.delete_provisioned, methods=["DELETE"]),
        Route(code.PATH, code.download, methods=["GET"]),
    ]
